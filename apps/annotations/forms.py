"""Input of the annotation page's JSON endpoints, validated field by field."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from django import forms
from django.utils.dateparse import parse_datetime

from apps.annotations.models import Annotation
from apps.market.models import Instrument

logger = logging.getLogger(__name__)

FIELDS = ("instrument", "side", "entry_time", "entry_price", "exit_time", "exit_price", "notes")


class TimestampField(forms.Field):
    """A UTC time given as ms since the epoch (int or digit string) or as ISO 8601 with an offset."""

    default_error_messages = {
        "invalid": "expected ms since the epoch or an ISO 8601 time with an offset",
        "naive": "an ISO time needs an offset, e.g. 2024-08-08T23:55:00Z",
        "range": "out of range",
    }

    def to_python(self, value) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, bool):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            try:
                return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
            except (OverflowError, OSError, ValueError):
                raise forms.ValidationError(self.error_messages["range"], code="range") from None
        if not isinstance(value, str):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if parsed.utcoffset() is None:
            raise forms.ValidationError(self.error_messages["naive"], code="naive")
        return parsed.astimezone(UTC)


class AnnotationForm(forms.Form):
    """All fields of an annotation; an update merges the stored values with the given ones first."""

    instrument = forms.ModelChoiceField(queryset=Instrument.objects.all(),
                                        error_messages={"invalid_choice": "no such instrument"})
    side = forms.ChoiceField(choices=Annotation.Side.choices)
    entry_time = TimestampField()
    entry_price = forms.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0.00000001"))
    exit_time = TimestampField()
    exit_price = forms.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0.00000001"))
    notes = forms.CharField(required=False, max_length=2000, strip=True)

    def clean(self) -> dict:
        data = super().clean()
        entry, exit_ = data.get("entry_time"), data.get("exit_time")
        if entry and exit_ and exit_ <= entry:
            self.add_error("exit_time", "must be after entry_time")
        return data


def annotation_form_data(annotation: Annotation) -> dict:
    """The stored values of ``annotation`` as form data (the base an update is merged onto)."""
    return {"instrument": annotation.instrument_id, "side": annotation.side,
            "entry_time": int(annotation.entry_time.timestamp() * 1000), "entry_price": str(annotation.entry_price),
            "exit_time": int(annotation.exit_time.timestamp() * 1000), "exit_price": str(annotation.exit_price),
            "notes": annotation.notes}
