from django.urls import path

from apps.dashboard import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/history/", views.history, name="dashboard-history"),
    path("dashboard/session/", views.session_control, name="session-control"),
    path("dashboard/heatmap/", views.heatmap, name="dashboard-heatmap"),
    path("dashboard/streams/", views.stream_control, name="stream-control"),
]
