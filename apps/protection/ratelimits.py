"""Per-endpoint rate limits on django-ratelimit's core (the django-redis cache, so a limit
holds across every app process). A limited request costs two O(1) cache calls per key."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django_ratelimit.core import _split_rate, get_usage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    group: str
    path: re.Pattern
    methods: frozenset[str] | None
    user_rate: str | None
    ip_rate: str | None


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
                user_rate=config.get("user"),
                ip_rate=config.get("ip"),
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
class Limited:
    scope: str  # "user" or "ip"
    retry_after: int


# When the cache (Redis) is away, each process limits on its own: fixed windows in memory.
_local_lock = threading.Lock()
_local_counts: dict[tuple[str, int], int] = {}


def _local_usage(cache_key: str, rate: str) -> tuple[bool, int]:
    limit, period = _split_rate(rate)
    window = int(time.time() // period)
    with _local_lock:
        if len(_local_counts) > 100_000:
            _local_counts.clear()
        count = _local_counts.get((cache_key, window), 0) + 1
        _local_counts[(cache_key, window)] = count
    return count > limit, max(1, int((window + 1) * period - time.time()))


def check(request, rule: Rule, *, user_id: int | None, ip: str) -> Limited | None:
    """Count this request against the rule; the first limit exceeded, or None."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    checks = []
    if rule.user_rate and user_id is not None:
        checks.append(("user", rule.user_rate, str(user_id)))
    if rule.ip_rate:
        checks.append(("ip", rule.ip_rate, ip))
    for scope, rate, value in checks:
        group = f"{rule.group}:{scope}"
        try:
            usage = get_usage(
                request,
                group=group,
                key=lambda _group, _request, value=value: value,
                rate=rate,
                increment=True,
            )
        except Exception as exc:  # the cache is down: limit per process instead
            logger.warning("rate limit cache unavailable: %s", exc.__class__.__name__)
            limited, retry = _local_usage(f"{group}:{value}", rate)
            if limited:
                return Limited(scope, retry)
            continue
        if usage and usage["should_limit"]:
            return Limited(scope, max(1, usage["time_left"]))
    return None
