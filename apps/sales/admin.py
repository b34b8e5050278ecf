from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.core.db_router import stale_read_alias
from apps.core.durations import parse_duration
from apps.core.errors import ApplicationError

from .models import MAX_INVENTORY, FlashSale, Product
from .selectors import sale_units_held, sales_with_unit_counts
from .services import sale_cancel, sale_inventory_grow, sale_is_locked, sale_saved, sale_start_now

admin.site.site_header = "Drop · shop admin"
admin.site.site_title = "Drop admin"
admin.site.index_title = "Sales, orders and payments"
# The app list beside every page leaves the sale list too narrow at 1440 px: the breadcrumbs
# and the home page already lead everywhere.
admin.site.enable_nav_sidebar = False

# Once shoppers may be queueing (the waiting room is open), these terms stay as announced.
LOCKED_WHEN_LIVE = (
    "product",
    "price",
    "currency",
    "start_time",
    "max_per_user",
    "reservation_seconds",
    "pre_queue_minutes",
    "status",
)

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


class DateTimeLocalInput(forms.DateTimeInput):
    """One native date-and-time picker instead of the admin's split date and time boxes."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


# Plain words for the messages an admin meets (Django's say "Ensure this value is …").
ERROR_MESSAGES = {
    "product": {"required": "Choose the product on sale."},
    "price": {
        "required": "Set the price shoppers pay.",
        "invalid": "Write the price as a number, like 129.00.",
        "min_value": "The price cannot be negative.",
        "max_digits": "That price is too large.",
    },
    "total_inventory": {
        "required": "How many units are on sale?",
        "invalid": "Write the number of units as a whole number, like 100.",
        "min_value": "A sale needs at least 1 unit.",
        "max_value": f"A sale can have at most {MAX_INVENTORY:,} units.",
    },
    "max_per_user": {
        "invalid": "Write the limit per shopper as a whole number.",
        "min_value": "Each shopper must be allowed at least 1 unit.",
    },
    "start_time": {
        "required": "When does the sale start?",
        "invalid": "Write the start as a date and time, like 2026-12-01 18:00.",
    },
    "end_time": {"invalid": "Write the end as a date and time, like 2026-12-01 18:30."},
    "reservation_seconds": {
        "min_value": "A reservation must hold its unit for at least 30 seconds.",
        "max_value": "A reservation can hold its unit for at most an hour (3600 seconds).",
    },
    "admission_rate": {"min_value": "Admit at least 1 shopper per second."},
    "max_active_shoppers": {"min_value": "Allow at least 1 active shopper."},
    "admission_factor": {"min_value": "The admission factor must be at least 1."},
    "admission_token_seconds": {"min_value": "An admission must last at least 10 seconds."},
    "pow_difficulty": {"max_value": "Proof of work can be at most 32 bits (0 turns it off)."},
}


class FlashSaleForm(forms.ModelForm):
    start_time = forms.DateTimeField(
        widget=DateTimeLocalInput(),
        input_formats=DATETIME_FORMATS,
        error_messages=ERROR_MESSAGES["start_time"],
        help_text="UTC, the shop's clock.",
    )
    duration = forms.CharField(
        required=False,
        help_text="How long the sale runs, like 30m, 2h or 1d. Or give the end below.",
        widget=forms.TextInput(attrs={"placeholder": "30m", "size": 8}),
    )
    end_time = forms.DateTimeField(
        required=False,
        widget=DateTimeLocalInput(),
        input_formats=DATETIME_FORMATS,
        error_messages=ERROR_MESSAGES["end_time"],
        help_text="UTC. Left empty, it is the start plus the duration.",
    )

    class Meta:
        model = FlashSale
        fields = "__all__"
        error_messages = ERROR_MESSAGES

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.locked = not self.instance._state.adding and sale_is_locked(self.instance)

    def clean(self):
        data = super().clean()
        start = data.get("start_time", self.instance.start_time if self.locked else None)
        duration_text = (data.get("duration") or "").strip()
        if duration_text:
            try:
                duration = parse_duration(duration_text)
            except ValueError:
                self.add_error("duration", "Write the duration like 30m, 2h or 1d.")
                duration = None
            if duration is not None and duration <= timedelta(0):
                self.add_error("duration", "The sale must run for some time.")
            elif duration is not None and start:
                data["end_time"] = start + duration
        end = data.get("end_time")
        if "end_time" not in self.errors and "duration" not in self.errors:
            if not end and start:
                self.add_error("end_time", "Give the sale a duration or an end time.")
            elif start and end and end <= start:
                self.add_error("end_time", "The sale must end after it starts.")
            elif self.locked and end and end <= timezone.now():
                self.add_error("end_time", "A live sale cannot be ended in the past.")
        total = data.get("total_inventory")
        if total is not None and not self.instance._state.adding:
            current = FlashSale.objects.filter(pk=self.instance.pk).values_list(
                "total_inventory", flat=True
            )[0]
            held = sale_units_held(sale_id=self.instance.pk)
            if self.locked and total < current:
                self.add_error(
                    "total_inventory",
                    f"This sale is live: its inventory can only grow (it has {current} units).",
                )
            elif total < held:
                self.add_error(
                    "total_inventory",
                    f"{held} units are already reserved or sold; "
                    "inventory cannot be set below that.",
                )
        return data


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "list_price", "created_at")
    search_fields = ("name",)

    def get_readonly_fields(self, request, obj=None):
        return ("created_at",) if obj else ()

    def get_exclude(self, request, obj=None):
        return None if obj else ("created_at",)


@admin.register(FlashSale)
class FlashSaleAdmin(admin.ModelAdmin):
    form = FlashSaleForm
    list_display = (
        "title_or_product",
        "phase",
        "starts",
        "runs_for",
        "total_inventory",
        "sold",
        "reserved",
        "remaining",
        "max_per_user",
        "console",
    )
    list_display_links = ("title_or_product",)
    list_filter = ("status",)
    search_fields = ("title", "product__name")
    actions = ("start_now", "cancel")

    class Media:
        js = ("js/admin-sale.js",)

    def get_fieldsets(self, request, obj=None):
        main = [
            "product",
            "title",
            "price",
            "currency",
            "total_inventory",
            "max_per_user",
            "start_time",
            "duration",
            "end_time",
            "schedule_preview",
            "reservation_seconds",
        ]
        if obj is not None:
            main.insert(main.index("reservation_seconds"), "status")
        fieldsets = [
            (None, {"fields": main}),
            (
                "Waiting room",
                {
                    "fields": (
                        "pre_queue_minutes",
                        "admission_rate",
                        "max_active_shoppers",
                        "admission_factor",
                        "admission_token_seconds",
                    )
                },
            ),
            ("Bot protection", {"fields": ("pow_difficulty", "bot_policy", "bot_threshold")}),
        ]
        if obj is not None:
            # On the add page these would show unsaved database defaults.
            fieldsets.append(("Record", {"fields": ("created_at", "updated_at")}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fields = ["schedule_preview"]
        if obj is not None:
            fields += ["created_at", "updated_at"]
            if sale_is_locked(obj):
                fields += list(LOCKED_WHEN_LIVE)
        return fields

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and sale_is_locked(obj):
            self.message_user(
                request,
                "This sale's waiting room is open: product, price, start, limit per shopper "
                "and reservation time are locked. Inventory can only grow.",
                messages.WARNING,
            )
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("product")
        match = getattr(request, "resolver_match", None)
        if request.method == "GET" and match and match.url_name == "sales_flashsale_changelist":
            # The list's figures may lag a moment (replica); a sale opened to edit may not.
            queryset = queryset.using(stale_read_alias())
        return sales_with_unit_counts(queryset)

    @admin.display(description="sale", ordering="title")
    def title_or_product(self, sale):
        return str(sale)

    @admin.display(description="state", ordering="status")
    def phase(self, sale):
        now = timezone.now()
        if sale.status == "CANCELLED":
            label = "Cancelled"
        elif sale.status == "COMPLETED" or now >= sale.end_time:
            label = "Ended"
        elif now >= sale.start_time:
            label = "Sold out" if getattr(sale, "units_free", 1) == 0 else "Live"
        elif sale_is_locked(sale, now=now):
            label = "Queue open"
        else:
            label = "Scheduled"
        return format_html(
            '<span class="sale-phase sale-phase-{}">{}</span>',
            label.lower().replace(" ", "-"),
            label,
        )

    @admin.display(description="live")
    def console(self, sale):
        return format_html('<a href="{}">console</a>', reverse("ops-console", args=[sale.id]))

    @admin.display(description="starts (UTC)", ordering="start_time")
    def starts(self, sale):
        return sale.start_time.strftime("%d %b %H:%M")

    @admin.display(description="runs")
    def runs_for(self, sale):
        minutes = int((sale.end_time - sale.start_time).total_seconds() // 60)
        if minutes < 120:
            return f"{minutes} min"
        return f"{minutes // 60} h {minutes % 60:02d}" if minutes % 60 else f"{minutes // 60} h"

    @admin.display(description="sold", ordering="units_sold")
    def sold(self, sale):
        return sale.units_sold

    @admin.display(description="reserved", ordering="units_reserved")
    def reserved(self, sale):
        return sale.units_reserved

    @admin.display(description="left", ordering="units_free")
    def remaining(self, sale):
        return sale.units_free

    @admin.display(description="Preview")
    def schedule_preview(self, sale):
        locked = bool(sale and not sale._state.adding and sale_is_locked(sale))
        return format_html(
            '<p class="sale-preview" data-sale-preview data-now-ms="{}" data-start-ms="{}" '
            'data-end-ms="{}" data-locked="{}" aria-live="off">{}</p>',
            int(timezone.now().timestamp() * 1000),
            int(sale.start_time.timestamp() * 1000) if sale and sale.start_time else "",
            int(sale.end_time.timestamp() * 1000) if sale and sale.end_time else "",
            "1" if locked else "",
            "The countdown shoppers will see appears here.",
        )

    def save_model(self, request, obj, form, change):
        grow_to = None
        if change and form.locked:
            current = FlashSale.objects.filter(pk=obj.pk).values_list("total_inventory", flat=True)[
                0
            ]
            if obj.total_inventory > current:
                grow_to, obj.total_inventory = obj.total_inventory, current
        super().save_model(request, obj, form, change)
        if grow_to is not None:
            sale_inventory_grow(sale_id=obj.id, total_inventory=grow_to)
            obj.refresh_from_db()
            self.message_user(request, f"Inventory raised to {grow_to} units.", messages.SUCCESS)
        sale_saved(sale=obj)

    @admin.action(description="Start the selected sales now")
    def start_now(self, request, queryset):
        for sale in queryset:
            try:
                sale_start_now(sale_id=sale.id)
                self.message_user(request, f"{sale} started.", messages.SUCCESS)
            except ApplicationError as error:
                self.message_user(request, f"{sale}: {error.detail}", messages.ERROR)

    @admin.action(description="Cancel the selected sales")
    def cancel(self, request, queryset):
        for sale in queryset:
            try:
                sale_cancel(sale_id=sale.id)
                self.message_user(request, f"{sale} cancelled.", messages.SUCCESS)
            except ApplicationError as error:
                self.message_user(request, f"{sale}: {error.detail}", messages.ERROR)
