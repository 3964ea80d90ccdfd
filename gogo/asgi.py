"""ASGI entry point: HTTP (Django), websockets (Channels) and lifespan.

On lifespan startup, with ``GOGO_AUTOSTART`` set, the replay session starts: in the embedded default
as a task on this server's event loop, with workers as a Celery task on the ``ingest`` queue.
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gogo.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.annotations.routing import websocket_urlpatterns as annotation_ws  # noqa: E402
from apps.dashboard.routing import websocket_urlpatterns  # noqa: E402
from apps.pipeline.lifespan import LifespanApp  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns + annotation_ws))),
        "lifespan": LifespanApp(),
    }
)
