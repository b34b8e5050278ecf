"""The sale's invariants, checked against PostgreSQL and Redis. Other apps add checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from apps.core.redis import RedisError, get_redis

from .keys import sale_keys
from .models import Unit
from .reconcile import _pending_users_and_units


@dataclass
class AuditReport:
    sale_id: str
    facts: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    title: str = ""  # "Audit of sale <id>" unless set

    @property
    def clean(self) -> bool:
        return not self.problems

    def render(self) -> str:
        title = self.title or f"Audit of sale {self.sale_id}"
        lines = [f"{title}: {'CLEAN' if self.clean else 'PROBLEMS'}"]
        lines += [f"  {name}: {value}" for name, value in self.facts.items()]
        lines += [f"  ✗ {problem}" for problem in self.problems]
        return "\n".join(lines)


AuditCheck = Callable[[object, AuditReport], None]
_checks: list[AuditCheck] = []


def audit_check(fn: AuditCheck) -> AuditCheck:
    _checks.append(fn)
    return fn


def sale_audit(*, sale_id: object) -> AuditReport:
    report = AuditReport(str(sale_id))
    for check in _checks:
        check(sale_id, report)
    return report


@audit_check
def _redis_matches_postgres(sale_id, report: AuditReport) -> None:
    keys = sale_keys(sale_id)
    try:
        redis = get_redis()
        if not redis.exists(keys.primed):
            report.facts["redis"] = "not primed (rebuilt from PostgreSQL on next use)"
            return
        redis_free = {int(u) for u in redis.smembers(keys.free)}
        _, pending_units = _pending_users_and_units(redis.hgetall(keys.pending))
    except RedisError as exc:
        report.facts["redis"] = f"unreachable ({exc})"
        return
    pg_free = set(
        Unit.objects.filter(sale_id=sale_id, order__isnull=True).values_list("number", flat=True)
    )
    report.facts.update(redis_units_free=len(redis_free), holds_in_flight=len(pending_units))
    expected = pg_free - pending_units
    if redis_free != expected:
        extra, missing = redis_free - pg_free, expected - redis_free
        report.problems.append(
            f"Redis pool differs from PostgreSQL: {len(extra)} unit(s) free in Redis but held "
            f"in PostgreSQL, {len(missing)} free in PostgreSQL but missing from Redis"
        )
