"""WSGI entry point: plain HTTP (pages, admin, the REST API) in production.

A WSGI worker runs Django's sync stack directly: no sync/async thread hops per request, which cost
Django's ASGI handler ~3 ms of CPU per request (bench/api.py). Websockets (``/ws/``) and the
lifespan autostart stay on the ASGI server (``gogo.asgi``); the reverse proxy (deploy/Caddyfile)
routes ``/ws/`` there and everything else here. docker-compose.yml's ``http`` service runs
``gunicorn gogo.wsgi:application``.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gogo.settings")
application = get_wsgi_application()
