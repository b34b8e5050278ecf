import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

MAX_INVENTORY = 1_000_000


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    list_price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    image_url = models.URLField(blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SaleStatus(models.TextChoices):
    SCHEDULED = "SCHEDULED", "Scheduled"
    ACTIVE = "ACTIVE", "Active"
    COMPLETED = "COMPLETED", "Completed"
    CANCELLED = "CANCELLED", "Cancelled"


class BotPolicy(models.TextChoices):
    OFF = "off", "Off: record scores only"
    BACK_OF_QUEUE = "back_of_queue", "Move suspects to the back of the queue"
    REFUSE = "refuse", "Refuse suspects"


class FlashSaleQuerySet(models.QuerySet):
    def upcoming_or_live(self):
        return self.filter(
            status__in=[SaleStatus.SCHEDULED, SaleStatus.ACTIVE], end_time__gt=Now()
        ).order_by("start_time")


class FlashSale(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="sales")
    title = models.CharField(max_length=255, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default="USD")
    total_inventory = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_INVENTORY)]
    )
    start_time = models.DateTimeField(db_index=True)
    end_time = models.DateTimeField()
    max_per_user = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    status = models.CharField(
        max_length=16, choices=SaleStatus.choices, default=SaleStatus.SCHEDULED
    )
    reservation_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(30), MaxValueValidator(3600)],
        help_text="How long a reservation holds its units before it expires.",
    )
    # Waiting room.
    pre_queue_minutes = models.PositiveIntegerField(
        default=15, help_text="The waiting room opens this long before the start."
    )
    admission_rate = models.PositiveIntegerField(
        default=1000, validators=[MinValueValidator(1)], help_text="Shoppers admitted per second."
    )
    max_active_shoppers = models.PositiveIntegerField(
        default=5000,
        validators=[MinValueValidator(1)],
        help_text="Admitted shoppers who may be active (not yet finished) at once.",
    )
    admission_factor = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=2,
        validators=[MinValueValidator(1)],
        help_text="At most this many active admissions per unit that could still be bought.",
    )
    admission_paused = models.BooleanField(
        default=False,
        help_text="While paused, the waiting room admits nobody (set from the operator console).",
    )
    admission_token_seconds = models.PositiveIntegerField(
        default=120,
        validators=[MinValueValidator(10)],
        help_text="How long an admission token stays valid.",
    )
    # Bot protection.
    pow_difficulty = models.PositiveSmallIntegerField(
        default=16,
        validators=[MaxValueValidator(32)],
        help_text="Proof-of-work bits to join the waiting room (0 turns it off).",
    )
    bot_policy = models.CharField(
        max_length=16, choices=BotPolicy.choices, default=BotPolicy.BACK_OF_QUEUE
    )
    bot_threshold = models.PositiveSmallIntegerField(
        default=50, help_text="Bot score (0-100) at or above which the policy applies."
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FlashSaleQuerySet.as_manager()

    class Meta:
        ordering = ["start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=models.F("start_time")), name="sale_valid_time_range"
            ),
            models.CheckConstraint(
                condition=Q(total_inventory__gte=1, total_inventory__lte=MAX_INVENTORY),
                name="sale_inventory_range",
            ),
            models.CheckConstraint(
                condition=Q(max_per_user__gte=1), name="sale_max_per_user_positive"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="sale_price_not_negative"),
            models.CheckConstraint(
                condition=Q(reservation_seconds__gte=30), name="sale_reservation_window"
            ),
            models.CheckConstraint(
                condition=Q(status__in=SaleStatus.values), name="sale_status_known"
            ),
        ]
        indexes = [
            models.Index(fields=["status"], condition=Q(status="ACTIVE"), name="sale_active_idx"),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.product.name} drop"
