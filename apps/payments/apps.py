from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"

    def ready(self) -> None:
        from apps.orders.services.expiry import expiry_condition_add

        from . import (
            audit,  # noqa: F401  (registers the payment checks of audit_sale)
            tasks,  # noqa: F401  (registers the tasks that services enqueue by name)
        )
        from .selectors import expiry_waits_for_charge_in_flight

        # Expiry waits for a charge in flight (orders asks; payments answers).
        expiry_condition_add(expiry_waits_for_charge_in_flight)
