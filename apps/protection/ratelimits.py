"""Per-endpoint rate limits: a sliding window per shopper and per address.

A request's windows (per shopper and per address) are checked in one Lua call on the shared
Redis (``lua/sliding_windows.lua``, called by SHA): each keeps a log of the requests let
through in the last window and lets a request through while every log holds fewer than its
limit, by Redis's own clock, so every process shares one window and one clock (on a Redis
Cluster the keys live on different slots: one call per window there). Unlike a fixed
window, a burst straddling a window boundary cannot get twice the limit. When Redis errs,
each process keeps the same sliding logs in memory instead (fail open to a per-process
limit, never a 500)."""

from __future__ import annotations

import collections
import itertools
import logging
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django_redis import get_redis_connection
from redis.cluster import RedisCluster

from apps.core.lua import LuaScript

logger = logging.getLogger(__name__)

SLIDING_WINDOWS = LuaScript(Path(__file__).parent / "lua" / "sliding_windows.lua")

_RATE = re.compile(r"^(\d+)/(\d*)([smhd])?$")
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/s"``, ``"20/m"``, ``"3/2h"`` → (limit, window in seconds)."""
    match = _RATE.match(rate.strip())
    if match is None:
        raise ValueError(f"not a rate: {rate!r} (like 10/s, 20/m, 3/2h)")
    count, multiplier, period = match.groups()
    return int(count), _PERIODS[period or "s"] * int(multiplier or 1)


@dataclass(frozen=True)
class Rule:
    group: str
    path: re.Pattern
    methods: frozenset[str] | None
    user_rate: tuple[int, int] | None
    ip_rate: tuple[int, int] | None


@lru_cache(maxsize=4)
def _rules(config_id: int) -> list[Rule]:
    rules = []
    for group, config in settings.RATE_LIMITS.items():
        methods = config.get("methods")
        rules.append(
            Rule(
                group=group,
                path=re.compile(config["path"]),
                methods=frozenset(m.upper() for m in methods) if methods else None,
                user_rate=parse_rate(config["user"]) if config.get("user") else None,
                ip_rate=parse_rate(config["ip"]) if config.get("ip") else None,
            )
        )
    return rules


def rule_for(request) -> Rule | None:
    for rule in _rules(id(settings.RATE_LIMITS)):
        if (rule.methods is None or request.method in rule.methods) and rule.path.match(
            request.path_info
        ):
            return rule
    return None


@dataclass(frozen=True)
class Hit:
    allowed: bool
    retry_after: int = 0  # seconds, when refused


@dataclass(frozen=True)
class Limited:
    scope: str  # "user" or "ip"
    retry_after: int


def _connection():
    """The Redis of the rate-limit cache (RATELIMIT_USE_CACHE): the shared Redis unless the
    operator points the limits at a Redis of their own."""
    return get_redis_connection(getattr(settings, "RATELIMIT_USE_CACHE", "default"))


# A unique id per logged request: this process's random prefix and a counter.
_ids = itertools.count()
_process = uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Window:
    key: str  # the Redis key, prefix included
    limit: int
    seconds: int


@dataclass(frozen=True)
class WindowsHit:
    index: int  # the first window that refused, -1 when every one had room
    hit: Hit


def sliding_windows_hit(windows: list[Window], *, now_us: int | None = None) -> WindowsHit:
    """Count one request against every window, logged in all of them only when all have
    room. ``now_us`` drives the clock in tests; by default the script reads Redis's TIME.
    Raises redis errors."""
    client = _connection()
    request_id = f"{_process}:{next(_ids)}"
    now = "" if now_us is None else now_us
    # On a cluster the keys live on different slots: one call per window.
    groups = [[w] for w in windows] if isinstance(client, RedisCluster) else [windows]
    for offset, group in enumerate(groups):
        args = [request_id, now]
        for window in group:
            args += [window.limit, window.seconds * 1_000_000]
        refused, value = SLIDING_WINDOWS(keys=[w.key for w in group], args=args, client=client)
        if refused:
            hit = Hit(False, max(1, math.ceil(int(value) / 1_000_000)))
            return WindowsHit(offset + int(refused) - 1, hit)
    return WindowsHit(-1, Hit(True))


def sliding_window_hit(
    key: str, *, limit: int, window_seconds: int, now_us: int | None = None
) -> Hit:
    """One window: count one request against ``limit`` per ``window_seconds`` under ``key``."""
    return sliding_windows_hit([Window(key, limit, window_seconds)], now_us=now_us).hit


# When Redis is away, each process limits on its own: the same sliding log, in memory.
_local_lock = threading.Lock()
_local_logs: dict[str, collections.deque] = {}
_LOCAL_KEYS_MAX = 100_000


def _local_room(key: str, *, limit: int, window_seconds: int, now: float) -> Hit:
    """Whether ``key``'s log has room now (under _local_lock; logs nothing)."""
    log = _local_logs.get(key)
    if log is None:
        if len(_local_logs) >= _LOCAL_KEYS_MAX:
            _local_logs.clear()
        log = _local_logs[key] = collections.deque()
    while log and log[0] <= now - window_seconds:
        log.popleft()
    if len(log) < limit:
        return Hit(True)
    return Hit(False, max(1, math.ceil(log[0] + window_seconds - now)))


def _local_hit(key: str, *, limit: int, window_seconds: int, now: float | None = None) -> Hit:
    return _local_hits([Window(key, limit, window_seconds)], now=now).hit


def _local_hits(windows: list[Window], now: float | None = None) -> WindowsHit:
    """The same windows in this process's memory: logged in all only when all have room."""
    now = time.time() if now is None else now
    with _local_lock:
        for index, window in enumerate(windows):
            hit = _local_room(
                window.key, limit=window.limit, window_seconds=window.seconds, now=now
            )
            if not hit.allowed:
                return WindowsHit(index, hit)
        for window in windows:
            _local_logs[window.key].append(now)
    return WindowsHit(-1, Hit(True))


def _key(group: str, scope: str, value: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}rl:{group}:{scope}:{value}"


@dataclass(frozen=True)
class Verdict:
    limited: Limited | None


def check(request, rule: Rule, *, user_id: int | None, ip: str) -> Verdict:
    """Count this request against the rule's windows (one Redis call): the first limit
    exceeded, if any."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return Verdict(None)
    scopes, windows = [], []
    if rule.user_rate and user_id is not None:
        scopes.append("user")
        windows.append(Window(_key(rule.group, "user", str(user_id)), *rule.user_rate))
    if rule.ip_rate:
        scopes.append("ip")
        windows.append(Window(_key(rule.group, "ip", ip), *rule.ip_rate))
    if not windows:
        return Verdict(None)
    try:
        result = sliding_windows_hit(windows)
    except Exception as exc:  # Redis is down: limit per process instead
        logger.warning("rate limit store unavailable: %s", exc.__class__.__name__)
        result = _local_hits(windows)
    if result.hit.allowed:
        return Verdict(None)
    return Verdict(Limited(scopes[result.index], result.hit.retry_after))
