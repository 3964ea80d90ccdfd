from django.urls import path

from apps.dashboard import control_views, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/history/", views.history, name="dashboard-history"),
    path("dashboard/session/", views.session_control, name="session-control"),
    path("dashboard/heatmap/", views.heatmap, name="dashboard-heatmap"),
    path("dashboard/streams/", views.stream_control, name="stream-control"),
    path("dashboard/risk/", views.risk_panel, name="dashboard-risk"),
    path("dashboard/risk/controls/", views.risk_controls, name="risk-controls"),
    path("dashboard/risk/kill-switch/", views.kill_switch, name="kill-switch"),
    path("control/", control_views.control_page, name="control"),
    path("control/stream/", control_views.stream, name="control-stream"),
    path("control/trading/", control_views.trading, name="control-trading"),
    path("control/thresholds/", control_views.thresholds, name="control-thresholds"),
    path("control/model/", control_views.model, name="control-model"),
    path("control/kill-switch/", control_views.kill_switch, name="control-kill-switch"),
]
