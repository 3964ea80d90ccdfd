from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "apps.trading"
    default_auto_field = "django.db.models.BigAutoField"
