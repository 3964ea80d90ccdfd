from django.contrib import admin

from apps.predictions.models import ModelCheckpoint, Prediction


@admin.register(ModelCheckpoint)
class ModelCheckpointAdmin(admin.ModelAdmin):
    list_display = ("model_name", "version", "is_active", "validation_metric", "data_start", "data_end", "created_at")
    list_filter = ("model_name", "is_active")
    readonly_fields = ("sha256", "path", "config", "metrics", "created_at")


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("instrument", "model_name", "ts_event", "status", "action", "confidence", "reason")
    list_filter = ("status", "action", "model_name", "instrument")
    date_hierarchy = "ts_event"
    exclude = ("input_package",)
    show_full_result_count = False
