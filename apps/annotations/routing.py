from django.urls import path

from apps.annotations.consumers import AnnotationConsumer

websocket_urlpatterns = [path("ws/annotations/", AnnotationConsumer.as_asgi())]
