from django import forms
from django.contrib import admin, messages

from apps.core.errors import ApplicationError
from apps.inventory.services import units_held_count

from .models import FlashSale, Product
from .selectors import sales_with_unit_counts
from .services import sale_cancel, sale_saved, sale_start_now


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "list_price", "created_at")
    search_fields = ("name",)


class FlashSaleForm(forms.ModelForm):
    class Meta:
        model = FlashSale
        fields = "__all__"

    def clean(self):
        data = super().clean()
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and end <= start:
            self.add_error("end_time", "The sale must end after it starts.")
        total = data.get("total_inventory")
        if total is not None and self.instance.pk:
            held = units_held_count(sale_id=self.instance.pk)
            if total < held:
                self.add_error(
                    "total_inventory",
                    f"{held} units are already reserved or sold; "
                    "inventory cannot be set below that.",
                )
        return data


@admin.register(FlashSale)
class FlashSaleAdmin(admin.ModelAdmin):
    form = FlashSaleForm
    list_display = (
        "__str__",
        "status",
        "start_time",
        "end_time",
        "total_inventory",
        "sold",
        "reserved",
        "remaining",
        "max_per_user",
    )
    list_filter = ("status",)
    search_fields = ("title", "product__name")
    actions = ("start_now", "cancel")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "product",
                    "title",
                    "price",
                    "currency",
                    "total_inventory",
                    "max_per_user",
                    "start_time",
                    "end_time",
                    "status",
                    "reservation_seconds",
                )
            },
        ),
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
        ("Record", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return sales_with_unit_counts(super().get_queryset(request).select_related("product"))

    @admin.display(description="sold", ordering="units_sold")
    def sold(self, sale):
        return sale.units_sold

    @admin.display(description="reserved", ordering="units_reserved")
    def reserved(self, sale):
        return sale.units_reserved

    @admin.display(description="remaining", ordering="units_free")
    def remaining(self, sale):
        return sale.units_free

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
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
