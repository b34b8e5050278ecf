from django.contrib import admin

from .models import DeadLetter, Payment, PaymentAttempt


class PaymentAttemptInline(admin.TabularInline):
    model = PaymentAttempt
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in PaymentAttempt._meta.fields]


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["id", "order", "status", "amount", "gateway", "attempts", "created_at"]
    list_filter = ["status", "gateway"]
    search_fields = ["id", "order__id", "idempotency_key", "gateway_charge_id"]
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [PaymentAttemptInline]


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["payment", "reason", "created_at", "processed_at", "resolution"]
    list_filter = ["resolution"]
