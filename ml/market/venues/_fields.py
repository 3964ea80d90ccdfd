"""Field readers shared by the venue parsers: each raises MalformedMessage naming the field.

Every venue sends prices and sizes as decimal strings (a few as JSON numbers); they become
floats here, checked finite (no ``nan``/``inf``), prices > 0 and sizes >= 0, so a parsed event
never carries an impossible number.
"""
from __future__ import annotations

import logging
import math
import re
from datetime import datetime
from typing import Any

import orjson

from ml.market.errors import MalformedMessage
from ml.market.events import Level

logger = logging.getLogger(__name__)

INTEGER_TEXT = re.compile(r"-?[0-9]{1,30}")
_DECIMAL_TEXT = re.compile(r"([0-9]+)(?:\.([0-9]*))?")


def decode(payload: dict | list | bytes | str) -> Any:
    """JSON text (bytes / str) or an already decoded dict / list; raises MalformedMessage."""
    if isinstance(payload, dict | list):
        return payload
    try:
        return orjson.loads(payload)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise MalformedMessage(f"invalid JSON: {exc}") from exc


def decode_object(payload: dict | bytes | str) -> dict:
    """Like :func:`decode` but the message must be a JSON object."""
    msg = decode(payload)
    if not isinstance(msg, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(msg).__name__}")
    return msg


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def obj(data: dict, key: str, where: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise MalformedMessage(f"{where}: field {key!r} {_state(value, 'an object')}")
    return value


def array(data: dict, key: str, where: str) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise MalformedMessage(f"{where}: field {key!r} {_state(value, 'a list')}")
    return value


def text(data: dict, key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"{where}: field {key!r} {_state(value, 'a non-empty string')}")
    return value


def integer(data: dict, key: str, where: str) -> int:
    """An integer field sent as a JSON integer or a decimal-integer string (OKX, MEXC)."""
    value = data.get(key)
    if is_int(value):
        return value
    if isinstance(value, str) and INTEGER_TEXT.fullmatch(value):
        return int(value)
    raise MalformedMessage(f"{where}: field {key!r} {_state(value, 'an integer')}")


def price(value: Any, where: str, key: str) -> float:
    """A price: finite and > 0 (quote currency)."""
    number = _number(value, where, key)
    if not number > 0:
        raise MalformedMessage(f"{where}: field {key!r} must be a positive price, got {value!r}")
    return number


def size(value: Any, where: str, key: str) -> float:
    """A size: finite and >= 0 (base units; 0 deletes a book level)."""
    number = _number(value, where, key)
    if number < 0:
        raise MalformedMessage(f"{where}: field {key!r} must be a size >= 0, got {value!r}")
    return number


def levels(raw: Any, where: str, key: str) -> tuple[Level, ...]:
    """``[[price, size, ...], ...]`` (extra items such as OKX order counts are ignored)."""
    if not isinstance(raw, list):
        raise MalformedMessage(f"{where}: field {key!r} {_state(raw, 'a list')}")
    out = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) < 2:
            raise MalformedMessage(f"{where}: field {key!r} must hold [price, size] pairs, got {item!r}")
        out.append((price(item[0], where, key), size(item[1], where, key)))
    return tuple(out)


def iso_ms(value: Any, where: str, key: str) -> int:
    """RFC 3339 UTC time (``2026-08-09T21:05:42.514318Z``, up to ns digits) to ms since epoch."""
    if not isinstance(value, str):
        raise MalformedMessage(f"{where}: field {key!r} {_state(value, 'an RFC 3339 time')}")
    head, dot, frac = value.rstrip("Z").partition(".")
    try:
        if not value.endswith("Z") or (dot and not re.fullmatch("[0-9]+", frac)):
            raise ValueError("not a UTC time ending in Z")
        base = datetime.fromisoformat(head + "+00:00")
    except ValueError:
        raise MalformedMessage(f"{where}: field {key!r} is not an RFC 3339 UTC time: {value!r}") from None
    return int(base.timestamp()) * 1000 + int((frac + "000")[:3])


def seconds_ms(value: Any, where: str, key: str) -> int:
    """Epoch seconds as a decimal string (Kraken ``"1618678142.557535"``) to ms, truncated."""
    seconds = _number(value, where, key)
    if seconds < 0:
        raise MalformedMessage(f"{where}: field {key!r} is a negative time: {value!r}")
    match = _DECIMAL_TEXT.fullmatch(value) if isinstance(value, str) else None
    if match:  # exact, no float rounding
        return int(match[1]) * 1000 + int(((match[2] or "") + "000")[:3])
    return int(seconds * 1000)


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedMessage(f"{where}: field {key!r} {_state(value, 'a decimal string')}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise MalformedMessage(f"{where}: field {key!r} is not a decimal string: {value!r}") from None
    if not math.isfinite(number):
        raise MalformedMessage(f"{where}: field {key!r} is not a finite number: {value!r}")
    return number


def _state(value: Any, expected: str) -> str:
    return "missing" if value is None else f"not {expected}: {value!r}"[:200]
