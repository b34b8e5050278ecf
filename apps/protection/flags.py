"""Bot flags in PostgreSQL: what the screening found, per shopper and per address."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.db.models import F
from django.db.models.functions import Greatest, Now
from django.utils import timezone

from apps.core.redis import get_redis, sale_key
from apps.sales.models import FlashSale

from .models import FlaggedAddress, FlaggedShopper
from .scoring import flags_waiting_key

logger = logging.getLogger(__name__)


def flag_record(
    *, user_id: int, ip: str, sale_id: str | None, score: int, reasons: list[str]
) -> None:
    """Upsert the shopper's and the address's flag (safe to run twice)."""
    for model, lookup in ((FlaggedShopper, {"user_id": user_id}), (FlaggedAddress, {"ip": ip})):
        if not lookup.get("user_id", lookup.get("ip")):
            continue
        model.objects.get_or_create(**lookup)
        changes = {
            "score": Greatest(F("score"), score),
            "reasons": sorted(set(reasons)),
            "times_flagged": F("times_flagged") + 1,
            "last_sale_id": sale_id,
            "last_seen": Now(),
        }
        if model is FlaggedShopper:
            changes["last_ip"] = ip or None
        model.objects.filter(**lookup).update(**changes)


def sale_flags_record(*, sale_id: object, batch: int = 500) -> int:
    """Record the flags the join screen queued for one sale in Redis (lua/join_screen.lua),
    oldest first, and drop them from the queue once written; one drain per sale at a time
    (a crash between the two records a batch twice, which flag_record allows)."""
    redis = get_redis()
    waiting = flags_waiting_key(sale_id)
    if not redis.exists(waiting):
        return 0
    lock = redis.lock(sale_key(sale_id, "bot", "flags-drain"), timeout=60, blocking=False)
    if not lock.acquire():
        return 0
    recorded = 0
    try:
        while raw := redis.lrange(waiting, 0, batch - 1):
            for item in raw:
                try:
                    flag = json.loads(item)
                    reasons = flag.get("reasons") or []  # Lua's cjson writes {} for []
                    flag_record(
                        user_id=int(flag["user_id"]),
                        ip=str(flag.get("ip") or ""),
                        sale_id=str(flag.get("sale_id") or sale_id),
                        score=int(flag["score"]),
                        reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
                    )
                except (ValueError, KeyError, TypeError):
                    logger.warning("dropped a malformed bot flag of sale %s: %r", sale_id, item)
            redis.ltrim(waiting, len(raw), -1)
            recorded += len(raw)
    finally:
        lock.release()
    return recorded


def flags_record_waiting(*, hours: int = 24) -> int:
    """Record the flags queued for every sale that ended less than ``hours`` ago or has not."""
    since = timezone.now() - timedelta(hours=hours)
    sale_ids = FlashSale.objects.filter(end_time__gte=since).values_list("id", flat=True)
    return sum(sale_flags_record(sale_id=sale_id) for sale_id in sale_ids)
