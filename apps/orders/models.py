import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class OrderStatus(models.TextChoices):
    RESERVED = "RESERVED", "Reserved"
    PAID = "PAID", "Paid"
    FULFILLED = "FULFILLED", "Fulfilled"
    EXPIRED = "EXPIRED", "Expired"
    CANCELLED = "CANCELLED", "Cancelled"
    REFUNDED = "REFUNDED", "Refunded"


# Statuses whose order still holds its units.
HOLDING_STATUSES = (OrderStatus.RESERVED, OrderStatus.PAID, OrderStatus.FULFILLED)


class OrderQuerySet(models.QuerySet):
    def holding(self):
        return self.filter(status__in=HOLDING_STATUSES)

    def past_reservation(self):
        """Reserved orders whose window has closed by the database's clock."""
        return self.filter(status=OrderStatus.RESERVED, reserved_until__lt=Now())


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    sale = models.ForeignKey("sales.FlashSale", on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField(default=1)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.RESERVED
    )
    idempotency_key = models.CharField(max_length=255)
    reserved_at = models.DateTimeField(db_default=Now())
    reserved_until = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now())

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-reserved_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"], name="order_idempotency_key_per_user"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(reserved_until__gt=models.F("reserved_at")),
                name="order_reservation_window",
            ),
            models.CheckConstraint(
                condition=Q(status__in=OrderStatus.values), name="order_status_known"
            ),
            models.CheckConstraint(
                condition=~Q(status="PAID") | Q(paid_at__isnull=False),
                name="order_paid_has_paid_at",
            ),
        ]
        indexes = [
            models.Index(
                fields=["reserved_until"],
                condition=Q(status="RESERVED"),
                name="order_reserved_until_idx",
            ),
            models.Index(fields=["sale", "status"], name="order_sale_status_idx"),
            models.Index(fields=["user", "sale"], name="order_user_sale_idx"),
        ]

    def __str__(self) -> str:
        return f"Order {self.id} ({self.status})"


class DegradedSale(models.Model):
    """A sale PostgreSQL sold while Redis was away: its Redis counters must be rebuilt before
    the fast path serves it again. ``generation`` rises with each degraded sale, so a rebuild
    clears the mark only if nothing was sold since it read PostgreSQL."""

    sale = models.OneToOneField("sales.FlashSale", on_delete=models.CASCADE, primary_key=True)
    generation = models.BigIntegerField(default=1)
    since = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"Sale {self.sale_id} (degraded, generation {self.generation})"
