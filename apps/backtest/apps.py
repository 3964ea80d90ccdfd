from django.apps import AppConfig


class BacktestConfig(AppConfig):
    name = "apps.backtest"
    default_auto_field = "django.db.models.BigAutoField"
