"""Admin: the audit log, read-only (no add, change or delete, even for superusers)."""
from django.contrib import admin

from apps.accounts.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "username", "action", "target_type", "target_id", "ip")
    list_filter = ("action", "target_type", "created_at")
    search_fields = ("username", "action", "target_type", "target_id", "ip")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
