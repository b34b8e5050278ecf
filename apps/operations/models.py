"""The operator's record: every control used on a live sale, and the sale's events feed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class OperatorAction(models.Model):
    """Who changed what on a sale, when, from what to what (pause, resume, rate, cancel)."""

    sale = models.ForeignKey("sales.FlashSale", on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    action = models.CharField(max_length=32)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} on {self.sale_id}"


class SaleEventKind(models.TextChoices):
    STARTED = "sale.started", "Sale started"
    SOLD_OUT = "sale.sold_out", "Sold out"
    ENDED = "sale.ended", "Sale ended"
    CANCELLED = "sale.cancelled", "Sale cancelled"
    ADMISSION_PAUSED = "admission.paused", "Admission paused"
    ADMISSION_RESUMED = "admission.resumed", "Admission resumed"
    ADMISSION_RATE_CHANGED = "admission.rate_changed", "Admission rate changed"
    PAYMENT_DEAD_LETTERED = "payment.dead_lettered", "Payment dead-lettered"


class SaleEvent(models.Model):
    """One line of a sale's events feed. ``dedupe_key`` makes each event recorded once, however
    often (or concurrently) the job that notices it runs."""

    sale = models.ForeignKey("sales.FlashSale", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32, choices=SaleEventKind.choices)
    data = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["sale", "id"], name="saleevent_sale_id_idx")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.sale_id})"
