"""How a moment goes into a JSON body: ISO 8601 in UTC with a ``Z`` (2026-05-01T12:00:00Z)."""

from __future__ import annotations

from datetime import datetime


def isoformat_z(value: datetime | None) -> str | None:
    """``value`` as ISO 8601 with ``Z`` for UTC; None (a moment not reached yet) stays None."""
    return value.isoformat().replace("+00:00", "Z") if value else None
