from django.urls import path

from apps.backtest import views

urlpatterns = [
    path("", views.backtest_list, name="backtest-list"),
    path("compare/", views.backtest_compare, name="backtest-compare"),
    path("<int:pk>/", views.backtest_detail, name="backtest-detail"),
    path("<int:pk>/csv", views.backtest_csv, name="backtest-csv"),
    path("<int:pk>/export", views.backtest_export, name="backtest-export"),
    path("<int:pk>/progress", views.backtest_progress, name="backtest-progress"),
]
