"""Helpers for the waiting-room tests: real Redis, real sales, the real scripts."""

from __future__ import annotations

import time
from datetime import timedelta

from apps.sales.selectors import sale_snapshot
from apps.waiting_room.services import RoomSettings, room_settings, waiting_room_tick


def snapshot(sale):
    return sale_snapshot(str(sale.id))


def room(sale, **overrides) -> RoomSettings:
    sale.refresh_from_db()
    settings = room_settings(sale)
    if overrides:
        settings = RoomSettings(**{**settings.__dict__, **overrides})
    return settings


def tick(sale_room: RoomSettings, units_reserved: int = 0):
    return waiting_room_tick(room=sale_room, units_reserved=units_reserved)


def wait_until(ms_epoch: int) -> None:
    delay = ms_epoch / 1000 - time.time()
    if delay > 0:
        time.sleep(delay + 0.05)


PRE_QUEUE = {"pow_difficulty": 0, "bot_policy": "off", "pre_queue_minutes": 15}
SOON = timedelta(seconds=3)
