"""Admin: users with their role (roles are the viewer / trader / admin groups), and the audit log,
read-only (no add, change or delete, even for superusers)."""
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from apps.accounts.models import AuditLog
from apps.accounts.roles import user_role

User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class GogoUserAdmin(UserAdmin):
    """Django's user admin plus the role column; put a user in the "trader" or "admin" group (or
    make them staff) to change their role. Passwords are never shown, only their hash format."""

    list_display = ("username", "email", "role", "is_staff", "is_active", "last_login", "date_joined")
    list_filter = ("groups", "is_staff", "is_superuser", "is_active")

    @admin.display(description="Role")
    def role(self, obj) -> str:
        return user_role(obj) or "-"


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "username", "action", "target_type", "target_id", "ip")
    list_filter = ("action", "target_type", "created_at")
    search_fields = ("username", "action", "target_type", "target_id", "ip")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
