from django.apps import AppConfig

from apps.inventory.signals import inventory_rebuilt


class OrdersConfig(AppConfig):
    name = "apps.orders"
    label = "orders"

    def ready(self) -> None:
        # A rebuilt Redis pool drops the sale's idempotency records: orders restores them.
        from . import audit  # noqa: F401  (registers orders' check of audit_sale)
        from .services.reservations import idempotency_records_restore_on_rebuild

        inventory_rebuilt.connect(
            idempotency_records_restore_on_rebuild, dispatch_uid="orders.idempotency_records"
        )
