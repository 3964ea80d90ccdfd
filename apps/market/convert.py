"""Conversions between ml/ floats and database Decimals / datetimes (one place, no drift)."""
from datetime import UTC, datetime
from decimal import Decimal

EIGHT_PLACES = Decimal("0.00000001")


def to_decimal(value: float) -> Decimal:
    """A float price or size as a Decimal with 8 decimal places (the database scale)."""
    return Decimal(repr(float(value))).quantize(EIGHT_PLACES)


def ms_to_datetime(ms: int) -> datetime:
    """Milliseconds since the epoch to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    """Aware datetime to milliseconds since the epoch (raises ValueError if naive)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: timestamps must be timezone-aware UTC")
    return int(round(value.timestamp() * 1000))
