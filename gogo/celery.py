"""Celery application. Queues: ingest, inference, training, default (see docker-compose.yml)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gogo.settings")

app = Celery("gogo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
