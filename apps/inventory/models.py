"""PostgreSQL's own guard on inventory.

A sale has exactly ``total_inventory`` unit rows; an order holds units by pointing them at
itself with ``UPDATE … WHERE order_id IS NULL``. Each unit is its own row, so concurrent
reservations never queue on one hot counter row, and no set of commits can hold more units
than exist. ``SaleBuyer`` caps each shopper's units per sale with a CHECK.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Unit(models.Model):
    sale = models.ForeignKey("sales.FlashSale", on_delete=models.CASCADE, related_name="units")
    number = models.PositiveIntegerField()
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="units"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sale", "number"], name="unit_number_per_sale"),
        ]
        indexes = [
            models.Index(fields=["sale"], condition=Q(order__isnull=True), name="unit_free_idx"),
        ]

    def __str__(self) -> str:
        return f"unit {self.number} of {self.sale_id}"


class SaleBuyer(models.Model):
    """How many units a shopper holds in a sale; the CHECK is the per-shopper limit."""

    sale = models.ForeignKey("sales.FlashSale", on_delete=models.CASCADE, related_name="buyers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sale_holdings"
    )
    units_held = models.PositiveIntegerField(default=0)
    max_units = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sale", "user"], name="buyer_once_per_sale"),
            models.CheckConstraint(
                condition=Q(units_held__lte=F("max_units")), name="buyer_within_limit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} holds {self.units_held}/{self.max_units} in {self.sale_id}"
