"""Typed wrappers around the waiting room's Lua scripts (loaded once, called by SHA)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings

from apps.core.lua import LuaScript
from apps.inventory.keys import sale_keys

from .keys import RoomKeys
from .screening import ScreenStep

LUA = Path(__file__).parent / "lua"
PLACE = LuaScript(LUA / "place.lua")
TICK = LuaScript(LUA / "tick.lua")
FINISH = LuaScript(LUA / "finish.lua")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Place:
    outcome: str  # CLOSED NOT_IN_QUEUE ENDED WAITING READY ADMITTED EXPIRED USED SOLD_OUT
    rank: int | None = None
    now_serving: int | None = None
    jti: str | None = None
    expires_ms: int | None = None
    opens_ms: int | None = None
    measured_rate: float | None = None  # admitted per second, None before any measure
    drawing: int = 0  # before the start: how many joined so far (their order is drawn then)
    order_id: str | None = None  # USED/EXPIRED: the order the shopper's admission bought
    units_held: int | None = None  # with order_id: the units the shopper holds in the sale


def place_keys(keys: RoomKeys) -> list[str]:
    """KEYS of place.lua, in its order."""
    return list(_place_keys(keys.sale_id, settings.REDIS_KEY_PREFIX))


@lru_cache(maxsize=1024)
def _place_keys(sale_id: str, prefix: str) -> tuple[str, ...]:
    """A sale's keys are the same on every join: named once per sale (and key prefix)."""
    keys = RoomKeys(sale_id)
    inventory = sale_keys(keys.sale_id)
    return (
        keys.state,
        keys.pre,
        keys.post,
        keys.back_pre,
        keys.back_post,
        keys.claims,
        keys.live,
        keys.main_batches,
        keys.back_batches,
        keys.batch_meta,
        inventory.free,
        inventory.primed,
        keys.requeued,
        inventory.buyers,
    )


class _ComposedScript(LuaScript):
    """A script made of other scripts' text (loaded and called like any LuaScript)."""

    def __init__(self, name: str, text: str):
        self.path = None
        self.name = name
        self.script = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


@lru_cache(maxsize=8)
def screened_join_script(screen: Path) -> LuaScript:
    """place.lua behind a join screen's script, in one script (screening.py): KEYS are the
    screen's then place.lua's; ARGV the counts of the screen's keys and arguments, the
    screen's arguments, then place.lua's. Replies {screen's reply} when the screen refused,
    else {screen's reply, place.lua's reply}."""
    text = f"""local function screen(KEYS, ARGV)
{screen.read_text()}
end
local function room_place(KEYS, ARGV)
{PLACE.script}
end
local screen_key_count, screen_arg_count = tonumber(ARGV[1]), tonumber(ARGV[2])
local screen_keys, screen_args, room_keys, room_args = {{}}, {{}}, {{}}, {{}}
for i = 1, #KEYS do
  if i <= screen_key_count then screen_keys[i] = KEYS[i]
  else room_keys[i - screen_key_count] = KEYS[i] end
end
for i = 3, #ARGV do
  if i - 2 <= screen_arg_count then screen_args[i - 2] = ARGV[i]
  else room_args[i - 2 - screen_arg_count] = ARGV[i] end
end
local verdict = screen(screen_keys, screen_args)
if verdict[1] == 'back' then
  room_args[6] = '1'
elseif verdict[1] ~= 'ok' then
  return {{verdict}}
end
return {{verdict, room_place(room_keys, room_args)}}
"""
    return _ComposedScript(f"join+{screen.stem}", text)


def place(
    keys: RoomKeys,
    *,
    mode: str,
    user_id: int,
    opens_ms: int,
    starts_ms: int,
    ends_ms: int,
    closed: bool,
    back_of_queue: bool = False,
    random_score: float = 0.0,
    jti: str = "",
    admission_ms: int = 0,
    max_per_user: int = 1,
    screen: ScreenStep | None = None,
) -> tuple[list | None, Place | None]:
    """The shopper's place, behind the join screen's step when given one: (the screen's
    reply or None, the place or None when the screen refused)."""
    args = [
        mode,
        user_id,
        opens_ms,
        starts_ms,
        ends_ms,
        "1" if back_of_queue else "0",
        repr(random_score),
        jti,
        admission_ms,
        "1" if closed else "0",
        max_per_user,
    ]
    if screen is None:
        return None, _place(PLACE(keys=place_keys(keys), args=args))
    reply = screened_join_script(screen.script)(
        keys=[*screen.keys, *place_keys(keys)],
        args=[len(screen.keys), len(screen.args), *screen.args, *args],
    )
    return reply[0], _place(reply[1]) if len(reply) > 1 else None


def _place(reply: list) -> Place:
    outcome = _text(reply[0])
    if outcome == "CLOSED":
        return Place(outcome, opens_ms=int(reply[1]))
    if len(reply) < 3:
        return Place(outcome)
    rank, serving = int(reply[1]), int(reply[2])
    rate = float(_text(reply[3]))
    measured = None if rate < 0 else rate
    drawing = int(reply[4])
    if outcome == "READY":
        return Place(
            outcome,
            rank,
            serving,
            jti=_text(reply[5]),
            expires_ms=int(reply[6]),
            measured_rate=measured,
        )
    order_id = _text(reply[5]) if len(reply) > 5 else ""
    return Place(
        outcome,
        rank,
        serving,
        measured_rate=measured,
        drawing=drawing,
        order_id=order_id or None,
        units_held=int(reply[6]) if len(reply) > 6 else None,
    )


@dataclass(frozen=True)
class Tick:
    now_serving: int
    admitted: int
    active: int
    units_left: int | None
    waiting: int
    measured_rate: float | None  # admitted per second, smoothed; None before any measure
    phase: str  # scheduled, live, sold_out, closed


def tick(
    keys: RoomKeys,
    *,
    rate: int,
    max_active: int,
    units_reserved: int,
    factor_percent: int,
    admission_ms: int,
    starts_ms: int,
    closed: bool,
    longest_gap_ms: int = 1000,
    now_ms: int | None = None,
) -> Tick:
    """``now_ms`` drives the clock in tests; by default the script reads Redis's TIME."""
    inventory = sale_keys(keys.sale_id)
    reply = TICK(
        keys=[
            keys.state,
            keys.pre,
            keys.back_pre,
            keys.main_batches,
            keys.back_batches,
            keys.batch_meta,
            keys.batch_deadlines,
            keys.live,
            inventory.free,
            inventory.primed,
        ],
        args=[
            rate,
            max_active,
            units_reserved,
            factor_percent,
            admission_ms,
            starts_ms,
            "1" if closed else "0",
            longest_gap_ms,
            "" if now_ms is None else now_ms,
        ],
    )
    free = int(reply[3])
    rate_milli = int(_text(reply[5]))
    return Tick(
        now_serving=int(reply[0]),
        admitted=int(reply[1]),
        active=int(reply[2]),
        units_left=None if free < 0 else free,
        waiting=int(reply[4]),
        measured_rate=None if rate_milli < 0 else rate_milli / 1000,
        phase=_text(reply[6]),
    )


def finish(keys: RoomKeys, *, user_id: int, order_id: str = "", client=None) -> bool:
    """``client`` may be a pipeline (the result then comes from its execute())."""
    return bool(
        FINISH(keys=[keys.state, keys.claims, keys.live], args=[user_id, order_id], client=client)
    )
