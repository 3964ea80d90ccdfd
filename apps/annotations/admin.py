from django.contrib import admin

from apps.annotations.models import Annotation


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ("instrument", "side", "entry_time", "entry_price", "exit_time", "exit_price", "owner", "updated_at")
    list_filter = ("side", "instrument", "owner")
    search_fields = ("notes", "owner__username", "instrument__symbol")
    date_hierarchy = "entry_time"
    readonly_fields = ("created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        if not change and not obj.owner_id:
            obj.owner = request.user
        super().save_model(request, obj, form, change)
