"""Annotations (hand-marked trades; training cases).

Reads: every role reads every user's annotations, as the web UI shows others' annotations
read-only (``OwnedQuerysetMixin.read_all``). Writes (create, change, delete) need the trader role
and go through ``apps.annotations.services``; only the author changes or deletes one (staff may
moderate, as the service allows): another user's annotation is a 404 for writes and is never
changed. Every write is broadcast to the instrument's live annotation pages by the service.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError

from apps.accounts.permissions import IsTraderOrReadOnly
from apps.annotations.models import Annotation
from apps.api import filters
from apps.api.mixins import OwnedQuerysetMixin
from apps.api.serializers_annotations import AnnotationSerializer


def _as_drf(exc: DjangoValidationError) -> ValidationError:
    """A service's ValidationError as a 400 naming the fields (``non_field_errors`` otherwise)."""
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})


class AnnotationViewSet(OwnedQuerysetMixin, viewsets.ModelViewSet):
    """Hand-marked trades, newest entry first. Filters: instrument/symbol/venue, owner, mine, side,
    start/end on entry_time. Writes: traders, own annotations only (module docstring)."""

    queryset = Annotation.objects.select_related("owner").order_by("-entry_time", "-pk")
    serializer_class = AnnotationSerializer
    filterset_class = filters.AnnotationFilter
    permission_classes = [IsTraderOrReadOnly]
    owner_path = "owner"
    read_all = True

    def perform_create(self, serializer) -> None:
        from apps.annotations.services import annotation_create

        try:
            serializer.instance = annotation_create(owner=self.request.user, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc

    def perform_update(self, serializer) -> None:
        from apps.annotations.services import annotation_update

        try:
            serializer.instance = annotation_update(annotation=serializer.instance, user=self.request.user,
                                                    **serializer.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc
        except ValueError as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc

    def perform_destroy(self, instance: Annotation) -> None:
        from apps.annotations.services import annotation_delete

        annotation_delete(annotation=instance, user=self.request.user)
