from django.apps import AppConfig

from apps.inventory.signals import inventory_rebuilt


class OrdersConfig(AppConfig):
    name = "apps.orders"
    label = "orders"

    def ready(self) -> None:
        from apps.inventory.reconcile import orders_found_set
        from apps.waiting_room.releaser import reserved_units_count_set

        from . import audit  # noqa: F401  (registers orders' check of audit_sale)
        from .selectors import orders_found, units_reserved_by_sale
        from .services.reservations import idempotency_records_restore_on_rebuild

        # A rebuilt Redis pool drops the sale's idempotency records: orders restores them.
        inventory_rebuilt.connect(
            idempotency_records_restore_on_rebuild, dispatch_uid="orders.idempotency_records"
        )
        # The releaser paces admissions by the units open reservations may give back.
        reserved_units_count_set(units_reserved_by_sale)
        # Inventory's orphan sweep keeps the holds that became orders.
        orders_found_set(orders_found)
