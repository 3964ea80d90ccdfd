"""Liveness and readiness for load balancers (no authentication, no throttling, nothing secret)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.health import readiness

_Health = inline_serializer("Health", {"status": serializers.CharField()})
_Ready = inline_serializer("Ready", {"ready": serializers.BooleanField(), "checks": serializers.DictField()})


class HealthView(APIView):
    """Liveness: 200 ``{"status": "ok"}`` while the process serves requests; touches nothing else."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses=_Health, auth=[])
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyView(APIView):
    """Readiness: 200 when the database, Redis, the Celery workers and the wanted market streams are
    all fine, else 503; both with ``{"ready", "checks": {name: {"ok", "detail", "ms"}}}``."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses={200: _Ready, 503: OpenApiResponse(_Ready, description="a dependency failed")}, auth=[])
    def get(self, request: Request) -> Response:
        result = readiness()
        return Response(result, status=200 if result["ready"] else 503)
