"""Admin: annotations, searchable by notes, owner and symbol; the PnL is computed, never stored."""
from django.contrib import admin

from apps.annotations.events import annotation_publish
from apps.annotations.models import Annotation


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ("instrument", "side", "entry_time", "entry_price", "exit_time", "exit_price", "return_pct", "owner",
                    "updated_at")
    list_filter = ("side", "instrument", "owner")
    search_fields = ("notes", "owner__username", "instrument__symbol")
    date_hierarchy = "entry_time"
    list_select_related = ("instrument", "owner")
    readonly_fields = ("return_pct", "created_at", "updated_at")

    @admin.display(description="PnL %")
    def return_pct(self, obj: Annotation) -> str:
        if obj.entry_price is None or obj.exit_price is None:
            return "-"
        return f"{obj.return_fraction * 100:+.3f}%"

    def save_model(self, request, obj, form, change):
        if not change and not obj.owner_id:
            obj.owner = request.user
        super().save_model(request, obj, form, change)
        # Moderation here reaches the open annotation pages like any other write (after commit).
        annotation_publish(event="updated" if change else "created", annotation=obj)

    def delete_model(self, request, obj):
        pk = obj.pk
        super().delete_model(request, obj)
        obj.pk = pk
        annotation_publish(event="deleted", annotation=obj)

    def delete_queryset(self, request, queryset):
        rows = [(obj, obj.pk) for obj in queryset]
        super().delete_queryset(request, queryset)
        for obj, pk in rows:
            obj.pk = pk
            annotation_publish(event="deleted", annotation=obj)
