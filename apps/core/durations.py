"""Durations as people write them: 0s, 45s, 2m, 1h, 1d, or plain seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> timedelta:
    match = _PATTERN.match(str(text))
    if not match:
        raise ValueError(f"Not a duration: {text!r} (use e.g. 0s, 45s, 2m, 1h)")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNITS[unit or "s"])
