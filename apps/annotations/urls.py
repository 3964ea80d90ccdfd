from django.urls import path

from apps.annotations import views

urlpatterns = [
    path("", views.annotation_page, name="annotations"),
    path("data/", views.annotation_data, name="annotation-data"),
    path("items/", views.annotation_collection, name="annotation-collection"),
    path("items/<int:pk>/", views.annotation_item, name="annotation-item"),
]
