from django.urls import path

from apps.dashboard import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/history/", views.history, name="dashboard-history"),
    path("dashboard/session/", views.session_control, name="session-control"),
    path("dashboard/heatmap/", views.heatmap, name="dashboard-heatmap"),
    path("dashboard/streams/", views.stream_control, name="stream-control"),
    path("dashboard/risk/", views.risk_panel, name="dashboard-risk"),
    path("dashboard/risk/controls/", views.risk_controls, name="risk-controls"),
    path("dashboard/risk/kill-switch/", views.kill_switch, name="kill-switch"),
]
