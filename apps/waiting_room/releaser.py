"""The releaser: a small long-running process (``manage.py run_releaser``, Procfile
``releaser``) that ticks every open waiting room about ten times a second.

Why a process rather than a Celery beat task: beat schedules at one-second granularity at
best and its tasks queue behind whatever else the workers are doing, so the release would
come in lumps and stall when the workers are busy; a loop of its own ticks on time. Every
bit of state lives in Redis and each tick credits only the time since the previous tick
(whoever ran it, capped at WAITING_ROOM_LONGEST_GAP_MS), so a restart loses nobody's place
and two releasers running at once do not double the rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import close_old_connections, connection
from django.utils import timezone

from apps.core import metrics
from apps.core.redis import RedisError
from apps.inventory.services import inventory_ensure_primed
from apps.sales.models import FlashSale

from .services import (
    RoomSettings,
    room_settings,
    sale_broadcast,
    sale_message,
    waiting_room_tick,
)

logger = logging.getLogger(__name__)

# Rooms are looked up this long before they open, and kept this long after the sale closes
# (so the last broadcast says "ended" or "cancelled").
LOOKAHEAD = timedelta(minutes=1)
AFTERMATH = timedelta(minutes=2)


def rooms_open() -> list[RoomSettings]:
    now = timezone.now()
    sales = FlashSale.objects.filter(
        end_time__gt=now - AFTERMATH, start_time__lte=now + timedelta(days=1)
    )
    return [
        room_settings(sale)
        for sale in sales
        if sale.start_time - timedelta(minutes=sale.pre_queue_minutes) <= now + LOOKAHEAD
    ]


# Who counts the units held by reservations that may still expire and come back, per sale
# (the layer that owns the reservations: OrdersConfig.ready sets orders' count).
_reserved_units_counts: list[Callable[[list[str]], dict[str, int]]] = []


def reserved_units_count_set(count: Callable[[list[str]], dict[str, int]]) -> None:
    _reserved_units_counts[:] = [count]


def units_reserved_by_sale(sale_ids: list[str]) -> dict[str, int]:
    """Units held by reservations that may still expire and come back (from PostgreSQL)."""
    return _reserved_units_counts[0](sale_ids) if _reserved_units_counts else {}


@dataclass
class Releaser:
    tick_seconds: float = 0.1
    refresh_seconds: float = 1.0
    rooms: list[RoomSettings] = field(default_factory=list)
    reserved: dict[str, int] = field(default_factory=dict)
    _refreshed_at: float = 0.0

    def refresh(self) -> None:
        if not connection.in_atomic_block:
            close_old_connections()  # a long-running process: drop a dead connection
        self.rooms = rooms_open()
        self.reserved = units_reserved_by_sale([room.sale_id for room in self.rooms])
        self._refreshed_at = time.monotonic()

    def tick_once(self) -> int:
        if time.monotonic() - self._refreshed_at >= self.refresh_seconds:
            try:
                self.refresh()
            except Exception:  # PostgreSQL away: keep ticking with what we knew
                logger.exception("releaser could not refresh the open rooms")
                self._refreshed_at = time.monotonic()
        admitted = 0
        metrics.releaser_ticks.inc()
        for room in self.rooms:
            try:
                tick = waiting_room_tick(
                    room=room, units_reserved=self.reserved.get(room.sale_id, 0)
                )
                admitted += tick.admitted
                if tick.phase == "live" and tick.units_left is None:
                    # Redis lost the sale's pool: nobody is admitted until it is rebuilt
                    # (fail closed), and nobody else would rebuild it without purchases.
                    self._prime(room.sale_id)
                sale_broadcast(sale_id=room.sale_id, message=sale_message(room, tick))
            except RedisError as exc:
                logger.warning("releaser tick failed for sale %s: %s", room.sale_id, exc)
        return admitted

    def _prime(self, sale_id: str) -> None:
        try:
            inventory_ensure_primed(sale_id=sale_id)
        except Exception:
            logger.warning("releaser could not rebuild the unit pool of sale %s", sale_id)

    def run(self, *, stop_after: float | None = None) -> None:
        started = time.monotonic()
        next_tick = started
        while stop_after is None or time.monotonic() - started < stop_after:
            self.tick_once()
            next_tick += self.tick_seconds
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()
