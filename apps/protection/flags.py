"""Bot flags in PostgreSQL: what the screening found, per shopper and per address."""

from __future__ import annotations

from django.db.models import F
from django.db.models.functions import Greatest, Now

from .models import FlaggedAddress, FlaggedShopper


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
