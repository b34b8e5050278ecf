"""How long a shopper will wait: the admission rate the estimates use, and the estimate.

tick.lua measures the rate the room really admits at, but only over the time someone was
left waiting (an empty queue says nothing about the pace; a room held up by admitted
shoppers who have not bought yet does, so they are counted), smooths it (time constant
about 20 s, at most 5 % a second) and keeps it between a floor and the configured rate.

The floor is the pace the room keeps even when every admitted shopper idles until their
admission expires: each of the ``max_active_shoppers`` slots frees at the latest after one
admission window, so at least max_active / window shoppers a second get in (the configured
rate, if that is lower). This module applies the same bounds again to whatever Redis holds
(a rate written by an older release included), so an estimate is always finite, between
position / rate and position / floor, and moves slowly between polls.
"""

from __future__ import annotations

import math

# A sanity bound on any estimate (a week), whatever the configuration says.
LONGEST_WAIT_SECONDS = 7 * 24 * 3600


def admission_rate_floor(*, rate: float, max_active: int, admission_seconds: float) -> float:
    rate = max(float(rate), 0.001)
    if max_active <= 0 or admission_seconds <= 0:
        return rate
    return min(rate, max_active / admission_seconds)


def estimate_rate(
    *, measured_rate: float | None, rate: float, max_active: int, admission_seconds: float
) -> float:
    """The admission rate (per second) the estimates use: the measured one within its
    bounds; the configured one before anything was measured."""
    configured = max(float(rate), 0.001)
    if measured_rate is None or not math.isfinite(measured_rate) or measured_rate < 0:
        return configured
    floor = admission_rate_floor(
        rate=configured, max_active=max_active, admission_seconds=admission_seconds
    )
    return min(configured, max(floor, measured_rate))


def wait_seconds(
    *,
    position: int,
    measured_rate: float | None,
    rate: float,
    max_active: int,
    admission_seconds: float,
    until_start_seconds: float = 0.0,
) -> int:
    """Seconds until ``position`` shoppers ahead are admitted (plus the time until the
    start, when it has not come yet), rounded up; 0 for nobody ahead."""
    if position <= 0:
        return 0
    per_second = estimate_rate(
        measured_rate=measured_rate,
        rate=rate,
        max_active=max_active,
        admission_seconds=admission_seconds,
    )
    seconds = max(0.0, until_start_seconds) + position / per_second
    return min(LONGEST_WAIT_SECONDS, int(seconds) + 1)
