from django.contrib import admin, messages

from apps.accounts.services import audit_record
from apps.predictions import services
from apps.predictions.models import (
    ModelAlert,
    ModelCheckpoint,
    ModelSetting,
    Prediction,
    PredictionOutcome,
    RegistrySettings,
    TrainingRun,
)
from apps.predictions.promotion import evidence_line


@admin.register(ModelCheckpoint)
class ModelCheckpointAdmin(admin.ModelAdmin):
    list_display = ("model_name", "version", "state", "is_active", "pinned", "net_edge_bps", "validation_metric",
                    "promotion_evidence", "replaced", "created_at", "load_error")
    list_filter = ("model_name", "state", "is_active", "pinned")
    search_fields = ("model_name", "version", "sha256")
    date_hierarchy = "created_at"
    readonly_fields = ("sha256", "path", "config", "metrics", "created_at", "is_active", "pinned", "load_error", "state",
                       "evidence", "replaced", "net_edge_bps")
    actions = ("evaluate_shadow", "promote_checkpoint", "rollback_to_replaced", "rollback_to_checkpoint", "unpin_model")

    @admin.display(description="Promotion evidence")
    def promotion_evidence(self, obj: ModelCheckpoint) -> str:
        """The last shadow check in one line: decision, n, mean and interval (bps per second)."""
        return evidence_line(obj.evidence)

    @admin.action(description="Check the selected shadows now: promote with a proven net edge, else refuse or wait")
    def evaluate_shadow(self, request, queryset):
        from apps.predictions.promotion import shadow_evaluate

        for checkpoint in queryset.filter(state=ModelCheckpoint.State.SHADOW):
            evidence = shadow_evaluate(checkpoint=checkpoint)
            self.message_user(request, f"{checkpoint}: {evidence['decision']}: {evidence['why']}")

    @admin.action(description="Promote: make the selected checkpoint live now (one per model; the one it replaces "
                  "stays its rollback target)")
    def promote_checkpoint(self, request, queryset):
        if queryset.values("model_name").distinct().count() != queryset.count():
            self.message_user(request, "Select at most one checkpoint per model.", messages.ERROR)
            return
        for checkpoint in queryset:
            evidence = {**checkpoint.evidence, "decision": "promoted",
                        "why": f"promoted by {request.user.get_username()} in the admin"}
            services.checkpoint_promote(checkpoint=checkpoint, evidence=evidence)
            audit_record(user=request.user, action="checkpoint.promote", target=checkpoint, request=request)
            self.message_user(request, f"{checkpoint} is now live.")

    @admin.action(description="Roll back: make the checkpoint each selected one replaced live again (pinned)")
    def rollback_to_replaced(self, request, queryset):
        for checkpoint in queryset:
            if checkpoint.replaced is None:
                self.message_user(request, f"{checkpoint} replaced no checkpoint.", messages.WARNING)
                continue
            services.checkpoint_rollback(checkpoint=checkpoint.replaced)
            audit_record(user=request.user, action="checkpoint.pin", target=checkpoint.replaced, request=request)
            self.message_user(request, f"{checkpoint.replaced} is live again (pinned).")

    @admin.action(description="Roll back: make the selected checkpoint live (pinned; one per model)")
    def rollback_to_checkpoint(self, request, queryset):
        if queryset.values("model_name").distinct().count() != queryset.count():
            self.message_user(request, "Select at most one checkpoint per model.", messages.ERROR)
            return
        for checkpoint in queryset:
            services.checkpoint_rollback(checkpoint=checkpoint)
            self.message_user(request, f"{checkpoint} is now live; the engine loads it at its next start.")

    @admin.action(description="Unpin: the best-ranked checkpoint of the selected models becomes live again")
    def unpin_model(self, request, queryset):
        for model_name in sorted(set(queryset.values_list("model_name", flat=True))):
            live = services.checkpoint_unpin(model_name=model_name)
            self.message_user(request, f"{model_name}: {live or 'no checkpoint'} is live.")


@admin.register(RegistrySettings)
class RegistrySettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "keep_top_n", "history_max_count", "history_max_age_days")

    def has_add_permission(self, request):
        return not RegistrySettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ModelSetting)
class ModelSettingAdmin(admin.ModelAdmin):
    list_display = ("model_name", "enabled")
    list_editable = ("enabled",)
    list_filter = ("enabled",)
    search_fields = ("model_name",)


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("instrument", "model_name", "ts_event", "status", "action", "confidence", "reason")
    list_filter = ("status", "action", "model_name", "instrument")
    search_fields = ("reason", "model_name")
    date_hierarchy = "ts_event"
    exclude = ("input_package",)
    # Model output: inspected, never edited (outcomes and training read it as it was).
    readonly_fields = ("instrument", "model_name", "checkpoint", "ts_event", "status", "reason", "action", "prob_buy",
                       "prob_sell", "prob_hold", "confidence", "completeness", "output", "created_at")
    show_full_result_count = False


@admin.register(PredictionOutcome)
class PredictionOutcomeAdmin(admin.ModelAdmin):
    list_display = ("instrument", "model_name", "ts_event", "horizon", "action", "label", "correct", "realized_return",
                    "pnl_bps", "confidence", "brier")
    list_filter = ("model_name", "horizon", "correct", "action", "label", "instrument")
    search_fields = ("model_name",)
    date_hierarchy = "ts_event"
    raw_id_fields = ("prediction",)
    readonly_fields = ("horizon", "instrument", "model_name", "ts_event", "action", "confidence", "price_start", "price_end",
                       "realized_return", "label", "correct", "pnl_bps", "brier", "scored_at")
    show_full_result_count = False


@admin.register(ModelAlert)
class ModelAlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "model_name", "instrument", "horizon", "metric", "message", "acknowledged",
                    "notified", "notify_error")
    list_filter = ("kind", "model_name", "acknowledged", "horizon")
    search_fields = ("message", "model_name")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "acknowledged_at", "notified", "notify_error")
    actions = ("acknowledge",)

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request, queryset):
        from apps.predictions.alerts import alert_acknowledge

        for alert in queryset.filter(acknowledged=False):
            alert_acknowledge(alert=alert)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "model_name", "kind", "state", "reason", "cases_needed", "requested_by",
                    "candidate_metric", "active_metric", "n_train", "n_val", "checkpoint", "finished_at")
    list_filter = ("model_name", "kind", "state")
    search_fields = ("model_name", "metric_name")
    date_hierarchy = "started_at"
    readonly_fields = ("detail", "candidate_metric", "active_metric", "n_train", "n_val", "started_at", "finished_at",
                       "reason", "cases_needed", "requested_by")
