from django.contrib import admin

from .models import OperatorAction, SaleEvent


@admin.register(OperatorAction)
class OperatorActionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "sale", "actor", "action", "before", "after")
    list_filter = ("action",)
    readonly_fields = [f.name for f in OperatorAction._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SaleEvent)
class SaleEventAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "sale", "kind")
    list_filter = ("kind",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
