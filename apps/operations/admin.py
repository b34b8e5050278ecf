from django.contrib import admin

from .models import OperatorAction, SaleEvent


class RecordAdmin(admin.ModelAdmin):
    """A record of what happened: shown, never added, changed or deleted in the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OperatorAction)
class OperatorActionAdmin(RecordAdmin):
    list_display = ("created_at", "sale", "actor", "action", "before", "after")
    list_filter = ("action",)


@admin.register(SaleEvent)
class SaleEventAdmin(RecordAdmin):
    list_display = ("id", "created_at", "sale", "kind")
    list_filter = ("kind",)
