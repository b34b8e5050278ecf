from django.contrib import admin

from .models import Order


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "sale",
        "quantity",
        "amount",
        "status",
        "reserved_at",
        "reserved_until",
        "paid_at",
    )
    list_filter = ("status",)
    search_fields = ("id", "user__username", "idempotency_key")
    raw_id_fields = ("user", "sale")
    readonly_fields = [f.name for f in Order._meta.fields]

    def has_add_permission(self, request):
        return False  # orders come from purchases, never typed in

    def has_delete_permission(self, request, obj=None):
        return False
