from django.contrib import admin, messages

from apps.orders.models import DegradedSale

from . import blocklist
from .models import FlaggedAddress, FlaggedShopper


@admin.register(FlaggedShopper)
class FlaggedShopperAdmin(admin.ModelAdmin):
    list_display = ("user", "score", "reasons", "times_flagged", "last_ip", "blocked", "last_seen")
    list_filter = ("blocked",)
    search_fields = ("user__username", "last_ip")
    raw_id_fields = ("user", "last_sale")
    readonly_fields = ("score", "reasons", "times_flagged", "first_seen", "last_seen")
    actions = ("block", "clear")

    @admin.action(description="Block the selected shoppers (403 on join and purchase)")
    def block(self, request, queryset):
        blocklist.shoppers_block(user_ids=list(queryset.values_list("user_id", flat=True)))
        messages.success(request, "Blocked.")

    @admin.action(description="Clear the selected shoppers (unblock, reset score)")
    def clear(self, request, queryset):
        blocklist.shoppers_clear(user_ids=list(queryset.values_list("user_id", flat=True)))
        messages.success(request, "Cleared.")


@admin.register(FlaggedAddress)
class FlaggedAddressAdmin(admin.ModelAdmin):
    list_display = ("ip", "score", "reasons", "times_flagged", "blocked", "last_seen")
    list_filter = ("blocked",)
    search_fields = ("ip",)
    raw_id_fields = ("last_sale",)
    readonly_fields = ("score", "reasons", "times_flagged", "first_seen", "last_seen")
    actions = ("block", "clear")

    @admin.action(description="Block the selected addresses")
    def block(self, request, queryset):
        blocklist.addresses_block(ips=list(queryset.values_list("ip", flat=True)))
        messages.success(request, "Blocked.")

    @admin.action(description="Clear the selected addresses")
    def clear(self, request, queryset):
        blocklist.addresses_clear(ips=list(queryset.values_list("ip", flat=True)))
        messages.success(request, "Cleared.")


@admin.register(DegradedSale)
class DegradedSaleAdmin(admin.ModelAdmin):
    list_display = ("sale", "generation", "since")
    readonly_fields = ("sale", "generation", "since")
