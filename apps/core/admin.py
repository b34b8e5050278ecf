"""The admin's user pages, with deactivation and deletion going through the account services
(so the shopper's bearer tokens stop working at once, not when they expire)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from .accounts import user_saved, users_delete, users_set_active

User = get_user_model()


@admin.action(description="Deactivate selected accounts (their tokens stop working)")
def deactivate_accounts(modeladmin, request, queryset):
    users_set_active(user_ids=list(queryset.values_list("id", flat=True)), active=False)


@admin.action(description="Reactivate selected accounts")
def reactivate_accounts(modeladmin, request, queryset):
    users_set_active(user_ids=list(queryset.values_list("id", flat=True)), active=True)


class ShopUserAdmin(UserAdmin):
    actions = [deactivate_accounts, reactivate_accounts]

    def save_model(self, request, obj, form, change):
        was_active = form.initial.get("is_active") if change else None
        super().save_model(request, obj, form, change)
        user_saved(user=obj, was_active=was_active)

    def delete_model(self, request, obj):
        users_delete(users=[obj])

    def delete_queryset(self, request, queryset):
        users_delete(users=list(queryset))


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, ShopUserAdmin)
