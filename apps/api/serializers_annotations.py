"""Serializers of annotations (hand-marked trades): times ISO 8601 UTC, prices USD (Decimal strings)."""
from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from apps.annotations.models import Annotation
from apps.market.models import Instrument

POSITIVE = Decimal("0.00000001")


class AnnotationSerializer(serializers.ModelSerializer):
    """One hand-marked trade. ``owner`` is its author (read-only: always the requesting user on
    create); ``return_fraction`` the simple return in its direction, before fees.

    Field checks here (types, ranges, exit after entry) repeat the service's so a bad body is a 400
    naming the field before ``apps.annotations.services`` is called; the service stays the
    authority (its ValidationError is mapped to the same 400)."""

    owner = serializers.CharField(source="owner.username", read_only=True)
    instrument = serializers.PrimaryKeyRelatedField(queryset=Instrument.objects.all())
    return_fraction = serializers.FloatField(read_only=True)

    class Meta:
        model = Annotation
        fields = ["id", "owner", "instrument", "side", "entry_time", "entry_price", "exit_time", "exit_price", "notes",
                  "return_fraction", "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "return_fraction", "created_at", "updated_at"]
        extra_kwargs = {"entry_price": {"min_value": POSITIVE}, "exit_price": {"min_value": POSITIVE},
                        "notes": {"max_length": 5000}}

    def validate(self, data: dict) -> dict:
        entry = data.get("entry_time", getattr(self.instance, "entry_time", None))
        exit_ = data.get("exit_time", getattr(self.instance, "exit_time", None))
        if entry is not None and exit_ is not None and exit_ <= entry:
            raise serializers.ValidationError({"exit_time": ["must be after entry_time"]})
        return data
