"""Money records are read-only here: no add, no edit, no delete. The one thing an operator
may do is refund, through an action that calls the gateway (one refund per charge, whatever
is clicked twice) and records who refunded what and when (the payment's attempt log, its
``refunded_by``, and Django's admin history)."""

from django.contrib import admin, messages

from .gateways.base import GatewayError, GatewayRejected
from .models import DeadLetter, Payment, PaymentAttempt
from .services import payment_refund_by_operator


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PaymentAttemptInline(admin.TabularInline):
    model = PaymentAttempt
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in PaymentAttempt._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "order",
        "status",
        "amount",
        "gateway",
        "attempts",
        "refund_origin",
        "refunded_by",
        "created_at",
    ]
    list_filter = ["status", "gateway", "refund_origin"]
    search_fields = ["id", "order__id", "idempotency_key", "gateway_charge_id"]
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [PaymentAttemptInline]
    actions = ["refund_at_gateway"]

    def has_refund_permission(self, request):
        return request.user.has_perm("payments.refund_payment")

    @admin.action(description="Refund the selected payments at the gateway", permissions=["refund"])
    def refund_at_gateway(self, request, queryset):
        done: dict[str, int] = {}
        for payment in queryset:
            try:
                outcome = payment_refund_by_operator(
                    payment_id=payment.id, operator=request.user.get_username()
                )
            except (GatewayError, GatewayRejected) as exc:
                self.message_user(
                    request, f"Payment {payment.id} was not refunded: {exc}", messages.ERROR
                )
                continue
            if outcome == "refunded":
                payment.refresh_from_db()
                self.log_change(
                    request,
                    payment,
                    f"Refunded at the gateway ({payment.gateway_refund_id}) "
                    f"for order {payment.order_id}",
                )
            done[outcome] = done.get(outcome, 0) + 1
        if done:
            labels = {
                "refunded": "refunded",
                "already": "already refunded",
                "not_refundable": "not refundable (no money taken)",
            }
            self.message_user(
                request, "; ".join(f"{n} {labels[k]}" for k, n in done.items()), messages.INFO
            )


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["payment", "reason", "created_at", "processed_at", "resolution"]
    list_filter = ["resolution"]
