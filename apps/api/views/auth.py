"""API tokens: exchange a username and password for the user's token (django-axes counts failures)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import user_role


class TokenView(APIView):
    """POST ``{"username", "password"}`` (JSON or form): 200 ``{"token", "role"}``; 400 naming the
    field on bad credentials (and once django-axes locked the username out from this IP address)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = AuthTokenSerializer

    @extend_schema(request=AuthTokenSerializer, auth=[], responses=inline_serializer(
        "TokenResponse", {"token": serializers.CharField(), "role": serializers.CharField()}))
    def post(self, request: Request) -> Response:
        serializer = AuthTokenSerializer(data=request.data, context={"request": request._request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key, "role": user_role(user)})
