"""Payments: one row per charge we ask a gateway for, every attempt recorded, and the
dead letters of charges that ran out of retries."""

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class PaymentStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"  # created; the charge is queued or in flight
    SUCCEEDED = "SUCCEEDED", "Succeeded"  # the gateway took the money, the order is PAID
    FAILED = "FAILED", "Failed"  # declined, or given up on; no money taken (as far as we know)
    REFUNDED = "REFUNDED", "Refunded"  # taken, then given back (order expired/cancelled)


class RefundOrigin(models.TextChoices):
    SHOP = "shop", "By the shop (the reservation had ended)"
    OPERATOR = "operator", "By an operator (admin action)"
    GATEWAY = "gateway", "At the gateway, not by us"
    DISPUTE = "dispute", "Disputed by the card holder"


class Payment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments")
    user_id = models.BigIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    # The client's key (X-Idempotency-Key or the checkout form's nonce) and the key we send
    # to the gateway, derived from the order: the same on every attempt of this payment.
    client_key = models.CharField(max_length=255)
    idempotency_key = models.CharField(max_length=255, unique=True)
    # The card as a PCI-minded shop may keep it: brand, last four digits, and the token each
    # gateway gave for it ({gateway name: token}); the charge uses the token. The number and
    # CVC went to the gateway and nowhere else.
    card_brand = models.CharField(max_length=16, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    gateway_tokens = models.JSONField(default=dict, blank=True)
    gateway = models.CharField(max_length=32, blank=True, default="")
    gateway_charge_id = models.CharField(max_length=255, blank=True, default="")
    refund_idempotency_key = models.CharField(max_length=255, blank=True, default="")
    gateway_refund_id = models.CharField(max_length=255, blank=True, default="")
    # Who gave the money back: the shop, an operator (refunded_by names them), or someone at
    # the gateway (seen by reconciliation); the audit counts each.
    refund_origin = models.CharField(
        max_length=16, choices=RefundOrigin.choices, blank=True, default=""
    )
    refunded_by = models.CharField(max_length=150, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now())
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("refund_payment", "Can refund a payment at the gateway")]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "client_key"], name="payment_client_key_per_order"
            ),
            # At most one charge in flight or kept per order: a second card can be tried
            # only after the first one failed, and an order is never paid twice.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status__in=["PENDING", "SUCCEEDED"]),
                name="payment_one_live_per_order",
            ),
            models.CheckConstraint(
                condition=Q(status__in=PaymentStatus.values), name="payment_status_known"
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(status="PENDING"), name="payment_pending_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.id} ({self.status})"


class AttemptOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    DECLINED = "declined", "Declined"
    TIMEOUT = "timeout", "Timed out"
    ERROR = "error", "Gateway error"  # 5xx, connection refused, in progress elsewhere
    CIRCUIT_OPEN = "circuit_open", "Circuit open"  # not sent: the breaker is open
    REFUNDED = "refunded", "Refunded"
    REFUND_FAILED = "refund_failed", "Refund failed"
    LOOKUP = "lookup", "Looked up"


class PaymentAttempt(models.Model):
    """The audit trail: every call to a gateway about a payment, whatever came of it."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="attempt_log")
    kind = models.CharField(max_length=16, default="charge")  # charge | refund | lookup
    gateway = models.CharField(max_length=32)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    http_status = models.PositiveIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=255, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} via {self.gateway}: {self.outcome}"


class DeadLetter(models.Model):
    """A charge that exhausted its retries; the dead-letter job retries it on the backup
    gateway or releases the reservation and tells the shopper."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="dead_letters")
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    processed_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(processed_at__isnull=True),
                name="deadletter_one_open_per_payment",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(processed_at__isnull=True),
                name="deadletter_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Dead letter of payment {self.payment_id}"
