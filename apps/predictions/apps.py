from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "apps.predictions"
    default_auto_field = "django.db.models.BigAutoField"
