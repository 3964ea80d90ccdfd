"""The audit log. Roles are Django groups (apps.accounts.roles); users are Django's own."""
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class AuditLog(models.Model):
    """One control action or order placed by a person (or the API on their behalf). Append-only:
    rows are written by ``apps.accounts.services.audit_record`` and never changed or deleted by gogo.

    ``target_type`` is ``app_label.model`` (or a free name such as ``session``), ``target_id`` its
    primary key as text; ``payload`` what was asked (never a secret).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="audit_entries")
    username = models.CharField(max_length=150, blank=True, help_text="Kept when the user is deleted")
    action = models.CharField(max_length=64, help_text="e.g. stream.start, checkpoint.pin, order.submit")
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["action", "-created_at"]), models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        target = f" {self.target_type}:{self.target_id}" if self.target_type else ""
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action}{target}"
