"""Typed wrappers of the payments app's Lua scripts: the circuit breaker shared by every
worker, and a lock (redis-py's) for jobs that must run alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from redis.exceptions import LockNotOwnedError

from apps.core.lua import LuaScript
from apps.core.redis import get_redis, key

_LUA = Path(__file__).parent / "lua"
BREAKER_ALLOW = LuaScript(_LUA / "breaker_allow.lua")
BREAKER_RECORD = LuaScript(_LUA / "breaker_record.lua")


@dataclass(frozen=True)
class BreakerState:
    state: str  # closed | probe | open
    wait_seconds: float

    @property
    def allows_call(self) -> bool:
        return self.state in ("closed", "probe")


def _breaker_keys(gateway: str) -> list[str]:
    tag = f"{{breaker:{gateway}}}"
    return [key(tag, "state"), key(tag, "probe")]


def breaker_allow(gateway: str) -> BreakerState:
    probe_ms = int((settings.PAYMENT_GATEWAY_TIMEOUT + 1) * 1000)
    state, wait_ms = BREAKER_ALLOW(keys=_breaker_keys(gateway), args=[uuid.uuid4().hex, probe_ms])
    return BreakerState(state.decode() if isinstance(state, bytes) else state, wait_ms / 1000)


def breaker_record(gateway: str, *, success: bool) -> str:
    state = BREAKER_RECORD(
        keys=_breaker_keys(gateway),
        args=[
            "success" if success else "failure",
            settings.PAYMENT_BREAKER_THRESHOLD,
            int(settings.PAYMENT_BREAKER_OPEN_SECONDS * 1000),
        ],
    )
    return state.decode() if isinstance(state, bytes) else state


def breaker_snapshot(gateway: str) -> dict:
    raw = get_redis().hgetall(_breaker_keys(gateway)[0])
    return {k.decode(): v.decode() for k, v in raw.items()}


@contextmanager
def job_lock(name: str, *, seconds: int) -> Iterator[bool]:
    """Yields True when this process holds the lock (redis-py's, non-blocking, released only
    by its owner's token and expiring after ``seconds``)."""
    lock = get_redis().lock(key("lock", name), timeout=seconds, blocking=False)
    got = lock.acquire()
    try:
        yield got
    finally:
        if got:
            with suppress(LockNotOwnedError):  # expired and maybe taken by another run
                lock.release()
