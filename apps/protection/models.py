from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class Flag(models.Model):
    """What the bot screen recorded about a shopper or an address, and the admin's decision."""

    score = models.PositiveSmallIntegerField(default=0, help_text="Highest score seen (0-100).")
    reasons = models.JSONField(default=list, blank=True)
    times_flagged = models.PositiveIntegerField(default=0)
    last_sale = models.ForeignKey(
        "sales.FlashSale", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    blocked = models.BooleanField(default=False)
    blocked_reason = models.CharField(max_length=255, blank=True, default="")
    first_seen = models.DateTimeField(db_default=Now(), editable=False)
    last_seen = models.DateTimeField(db_default=Now())

    class Meta:
        abstract = True


class FlaggedShopper(Flag):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bot_flag"
    )
    last_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        indexes = [
            models.Index(fields=["blocked"], condition=models.Q(blocked=True), name="flag_user_blk")
        ]

    def __str__(self) -> str:
        return f"{self.user} (score {self.score})"


class FlaggedAddress(Flag):
    ip = models.GenericIPAddressField(unique=True)
    accounts_seen = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-last_seen"]
        verbose_name_plural = "flagged addresses"
        indexes = [
            models.Index(fields=["blocked"], condition=models.Q(blocked=True), name="flag_ip_blk")
        ]

    def __str__(self) -> str:
        return f"{self.ip} (score {self.score})"
