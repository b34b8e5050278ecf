"""Reads of a waiting room that cost one Redis round trip and no database query."""

from __future__ import annotations

import time

from apps.core.redis import get_redis
from apps.inventory.keys import sale_keys
from apps.sales.models import SaleStatus
from apps.sales.selectors import SaleSnapshot

from .estimates import estimate_rate
from .keys import room_keys


def sale_live_phase(sale: SaleSnapshot, *, units_left: int | None) -> str:
    now_ms = time.time() * 1000
    if sale.status == SaleStatus.CANCELLED:
        return "cancelled"
    if sale.status == SaleStatus.COMPLETED or now_ms >= sale.ends_ms:
        return "ended"
    if now_ms < sale.starts_ms:
        return "scheduled"
    if units_left == 0:
        return "sold_out"
    return "live"


def room_now_serving(sale: SaleSnapshot) -> dict:
    """The public figure every waiting page polls (or hears over the WebSocket): with its own
    rank, a page computes its position and wait without asking about itself."""
    keys, inventory = room_keys(sale.id), sale_keys(sale.id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.hmget(keys.state, "sm", "sb", "rate")
    pipe.exists(inventory.primed)
    pipe.scard(inventory.free)
    (sm, sb, rate), primed, free = pipe.execute()
    units_left = int(free) if primed else None
    measured = float(rate) if rate is not None and float(rate) >= 0 else None
    phase = sale_live_phase(sale, units_left=units_left)
    return {
        "now_serving": int(sm or 0) + int(sb or 0),
        "admission_rate": round(
            estimate_rate(
                measured_rate=measured if phase == "live" else None,
                rate=sale.admission_rate,
                max_active=sale.max_active_shoppers,
                admission_seconds=sale.admission_token_seconds,
            ),
            1,
        ),
        "status": phase,
        "units_left": units_left,
    }
