"""URL configuration."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("apps.accounts.urls")),
    path("annotations/", include("apps.annotations.urls")),
    path("api/v1/", include(("apps.api.urls", "v1"), namespace="v1")),
    path("django_plotly_dash/", include("django_plotly_dash.urls")),
    path("backtests/", include("apps.backtest.urls")),
    path("", include("apps.dashboard.urls")),
]
