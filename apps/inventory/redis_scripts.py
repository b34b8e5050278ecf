"""Typed wrappers around the inventory Lua scripts (loaded once, called by SHA)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from django.conf import settings

from apps.core.lua import LuaScript

from .keys import SaleKeys

LUA = Path(__file__).parent / "lua"
RESERVE = LuaScript(LUA / "reserve.lua")
GIVEBACK = LuaScript(LUA / "giveback.lua")
RETURN_UNITS = LuaScript(LUA / "return_units.lua")
SWAP_REBUILT = LuaScript(LUA / "swap_rebuilt.lua")
ADD_MISSING = LuaScript(LUA / "add_missing.lua")
SOLD_OUT_SNAPSHOT = LuaScript(LUA / "sold_out_snapshot.lua")


def restock_delay_ms() -> int:
    """How long units that come back to an empty pool wait before they are sold again: just
    longer than a process may remember the sale sold out (SOLD_OUT_MEMORY_SECONDS); 0 when
    processes remember nothing."""
    seconds = float(getattr(settings, "SOLD_OUT_MEMORY_SECONDS", 0) or 0)
    return int(seconds * 1000) + 100 if seconds > 0 else 0


class ReserveOutcome(StrEnum):
    """What reserve.lua answered (its first reply element)."""

    OK = "OK"
    REPLAY = "REPLAY"
    ADMISSION_USED = "ADMISSION_USED"
    NOT_STARTED = "NOT_STARTED"
    ENDED = "ENDED"
    NOT_PRIMED = "NOT_PRIMED"
    LIMIT = "LIMIT"
    SOLD_OUT = "SOLD_OUT"


@dataclass(frozen=True)
class ReserveResult:
    outcome: ReserveOutcome
    units_left: int | None = None
    units: list[int] = field(default_factory=list)
    record: str | None = None
    held: int | None = None
    ms_to_start: int | None = None
    restocking: bool = False  # SOLD_OUT only while units that came back wait (reserve.lua)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def reserve(
    keys: SaleKeys,
    *,
    user_id: int,
    quantity: int,
    max_per_user: int,
    fingerprint: str,
    idempotency_key: str,
    idempotency_ttl: int,
    starts_ms: int,
    ends_ms: int,
    order_id: str,
    admission_key: str | None = None,
    admission_jti: str | None = None,
    admission_ttl: int = 0,
) -> ReserveResult:
    """``admission_key``/``admission_jti``: the waiting room's single-use marker of the
    admission presented; set on success, refused (ADMISSION_USED) when already set."""
    reply = RESERVE(
        keys=[
            keys.free,
            keys.primed,
            keys.buyers,
            keys.idempotency(user_id, idempotency_key),
            keys.inflight,
            keys.pending,
            admission_key if admission_key and admission_jti else keys.pending + ":none",
            keys.holders,
            keys.restock,
        ],
        args=[
            user_id,
            quantity,
            max_per_user,
            fingerprint,
            idempotency_ttl,
            starts_ms,
            ends_ms,
            order_id,
            admission_jti or "",
            admission_ttl,
        ],
    )
    outcome = ReserveOutcome(_text(reply[0]))
    match outcome:
        case ReserveOutcome.OK:
            return ReserveResult(
                outcome, units_left=int(reply[1]), units=[int(u) for u in reply[2:]]
            )
        case ReserveOutcome.REPLAY:
            return ReserveResult(outcome, record=_text(reply[1]))
        case ReserveOutcome.SOLD_OUT:
            return ReserveResult(outcome, units_left=int(reply[1]), restocking=len(reply) > 2)
        case ReserveOutcome.LIMIT:
            return ReserveResult(outcome, held=int(reply[1]))
        case ReserveOutcome.NOT_STARTED:
            return ReserveResult(outcome, ms_to_start=int(reply[1]))
    return ReserveResult(outcome)


def holds_confirm(keys: SaleKeys, order_ids: list[str], *, client) -> None:
    """These holds reached PostgreSQL: forget them as in flight. Their idempotency records
    stay as reserve.lua wrote them (they name the order). ``client`` is a pipeline (see
    ``apps.core.redis.script_pipeline``), sent by the caller with whatever else it carries."""
    client.zrem(keys.inflight, *order_ids)
    client.hdel(keys.pending, *order_ids)


@dataclass(frozen=True)
class PendingHold:
    """A hold taken in Redis that has not reached PostgreSQL yet (one pending entry)."""

    user_id: int
    quantity: int
    units: list[int]
    record_key: str | None  # its idempotency record
    admission_key: str | None  # the admission marker it set


def pending_hold_parse(value) -> PendingHold:
    """``user|quantity|units[|record key|admission marker key]`` (older entries lack the
    last two)."""
    parts = _text(value).split("|")
    return PendingHold(
        user_id=int(parts[0]),
        quantity=int(parts[1]),
        units=[int(n) for n in parts[2].split(",") if n],
        record_key=(parts[3] if len(parts) > 3 else "") or None,
        admission_key=(parts[4] if len(parts) > 4 else "") or None,
    )


def giveback(
    keys: SaleKeys,
    *,
    order_id: str,
    user_id: int | None = None,
    idempotency_key: str | None = None,
    record_key: str | None = None,
    admission_key: str | None = None,
    units_free: bool = True,
) -> bool:
    """Undo the hold ``order_id``; also remove its idempotency record (``record_key``, or
    the one of ``user_id`` and ``idempotency_key``) and its ``admission_key`` marker while
    they still name this order."""
    if record_key is None and user_id is not None and idempotency_key:
        record_key = keys.idempotency(user_id, idempotency_key)
    none = keys.pending + ":none"
    return bool(
        GIVEBACK(
            keys=[
                keys.free,
                keys.buyers,
                keys.inflight,
                keys.pending,
                record_key or none,
                admission_key or none,
                keys.restock,
            ],
            args=[order_id, "1" if units_free else "0", restock_delay_ms()],
        )
    )


def return_units(
    keys: SaleKeys,
    *,
    order_id: str,
    user_id: int,
    quantity: int,
    units: list[int],
    marker_ttl: int = 7 * 24 * 3600,
) -> bool:
    return bool(
        RETURN_UNITS(
            keys=[keys.free, keys.buyers, keys.primed, keys.returned(order_id), keys.restock],
            args=[user_id, quantity, marker_ttl, restock_delay_ms(), *units],
        )
    )


def swap_rebuilt(keys: SaleKeys, *, generation: str, units_were_sold: bool = True) -> int:
    """Install the staged pool. ``units_were_sold``: PostgreSQL holds units of this sale, so
    a process may remember it sold out; units the new pool offers then wait (reserve.lua)."""
    return int(
        SWAP_REBUILT(
            keys=[
                keys.free,
                keys.buyers,
                keys.primed,
                keys.pending,
                keys.staged_free,
                keys.staged_buyers,
                keys.restock,
                keys.holders_ready,
            ],
            args=[generation, restock_delay_ms() if units_were_sold else 0],
        )
    )


def add_missing(keys: SaleKeys, *, units: list[int]) -> int:
    if not units:
        return 0
    return int(
        ADD_MISSING(
            keys=[keys.free, keys.pending, keys.primed, keys.restock],
            args=[restock_delay_ms(), *units],
        )
    )


@dataclass(frozen=True)
class SoldOutSnapshot:
    """sold_out_snapshot.lua's answer: ``state`` UNKNOWN, AVAILABLE or SOLD_OUT; for
    SOLD_OUT, how long it holds, the holders' count, and the holders unless the count was
    the one the caller already had (then None)."""

    state: str
    valid_ms: int = 0
    holders_count: int = 0
    holders: frozenset[int] | None = None


def sold_out_snapshot(
    keys: SaleKeys, *, memory_ms: int, holders_known: int = -1
) -> SoldOutSnapshot:
    reply = SOLD_OUT_SNAPSHOT(
        keys=[keys.free, keys.primed, keys.holders, keys.holders_ready, keys.restock],
        args=[memory_ms, holders_known],
    )
    state = _text(reply[0])
    if state != "SOLD_OUT":
        return SoldOutSnapshot(state)
    count = int(reply[2])
    holders = None if count == holders_known else frozenset(int(u) for u in reply[3:])
    return SoldOutSnapshot(state, int(reply[1]), count, holders)
