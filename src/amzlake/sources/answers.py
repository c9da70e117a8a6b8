"""Reading values out of Amazon's answers: status enums (never guessed) and timestamps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from amzlake.errors import UnexpectedResponse

E = TypeVar("E", bound=StrEnum)


def parse_status(enum: type[E], value: Any, operation: str, what: str) -> E:
    """`value` as a member of `enum`; an unknown value raises UnexpectedResponse naming it."""
    try:
        return enum(value)
    except ValueError:
        raise UnexpectedResponse(
            f"{operation}: unknown {what} {value!r} (expected one of "
            f"{', '.join(s.value for s in enum)})", operation=operation,
        ) from None


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (a trailing Z allowed), or None when absent or unreadable."""
    if not value:
        return None
    text = str(value)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
