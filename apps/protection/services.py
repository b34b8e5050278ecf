"""Bot screening for waiting-room joins, and recording what it found.

``join_screen`` runs in this order, cheapest refusal first: block list (two SISMEMBERs),
honeypot, proof of work (one hash and a SET NX), then the scored signals. Refusals write
nothing to PostgreSQL: flags are recorded by a Celery task, once per shopper and sale a
minute.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from django.conf import settings

from apps.core.errors import Forbidden, NotFound
from apps.core.memory import ProcessMemory
from apps.core.redis import RedisError, get_redis, sale_key
from apps.sales.models import BotPolicy, FlashSale

from . import pow
from .blocklist import is_blocked
from .scoring import FLAG_MARKER_SECONDS, flag_marker_key, request_score
from .tasks import record_flag

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JoinVerdict:
    """What the screen decided about a waiting-room join."""

    allowed: bool = True
    back_of_queue: bool = False
    score: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SaleProtection:
    pow_difficulty: int
    bot_policy: str
    bot_threshold: int


class Blocked(Forbidden):
    code = "blocked"


class BotSuspected(Forbidden):
    code = "bot_suspected"


def client_ip(request) -> str:
    """REMOTE_ADDR, or the address the n-th trusted proxy saw (TRUSTED_PROXY_COUNT)."""
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        forwarded = [
            p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()
        ]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR", "") or "0.0.0.0"


_protection_memory = ProcessMemory("sale_protection", seconds=1.0)


def sale_protection(sale) -> SaleProtection:
    """The sale's bot settings: from the model when given one, else process memory, Redis
    (5 s) and PostgreSQL."""
    if hasattr(sale, "pow_difficulty"):
        return SaleProtection(sale.pow_difficulty, sale.bot_policy, sale.bot_threshold)
    sale_id = str(getattr(sale, "id", sale))
    cached = _protection_memory.get(sale_id)
    if cached is not None:
        return cached
    cache_key = sale_key(sale_id, "protection")
    value = None
    try:
        raw = get_redis().get(cache_key)
        if raw:
            value = SaleProtection(**json.loads(raw))
    except RedisError:
        raw = None
    if value is None:
        row = (
            FlashSale.objects.filter(id=sale_id)
            .values("pow_difficulty", "bot_policy", "bot_threshold")
            .first()
        )
        if row is None:
            raise NotFound("No such sale.", code="sale_not_found")
        value = SaleProtection(**row)
        try:
            get_redis().set(cache_key, json.dumps(row), ex=5)
        except RedisError:
            pass
    _protection_memory.set(sale_id, value)
    return value


def join_screen(*, request, sale, user_id: int, body: dict) -> JoinVerdict:
    """Screen a waiting-room join (block list, honeypot, proof of work, bot signals).

    Raises an ApplicationError (403) to refuse; returns a verdict otherwise. With the sale's
    ``back_of_queue`` policy a suspect is let in with ``back_of_queue=True``.
    """
    sale_id = str(getattr(sale, "id", sale))
    ip = client_ip(request)
    blocked = is_blocked(user_id=user_id, ip=ip)
    if blocked:
        raise Blocked(
            "This account is blocked from our sales. If you think this is a mistake, "
            "contact support."
            if blocked == "user"
            else "Requests from your network are blocked. Contact support if this is a mistake."
        )
    protection = sale_protection(sale)
    score = request_score(
        request=request,
        sale_id=sale_id,
        user_id=user_id,
        ip=ip,
        body=body,
        threshold=protection.bot_threshold,
    )
    if "honeypot" in score.reasons:
        flag_later(
            user_id=user_id,
            ip=ip,
            sale_id=sale_id,
            score=100,
            reasons=score.reasons,
            marked=score.flag_marked,
        )
        raise BotSuspected("This request looks automated.", extra={"reasons": ["honeypot"]})
    pow.pow_verify(
        sale_id=sale_id,
        required=protection.pow_difficulty,
        challenge=body.get("challenge"),
        nonce=body.get("nonce"),
    )
    suspect = score.value >= protection.bot_threshold
    if suspect:
        flag_later(
            user_id=user_id,
            ip=ip,
            sale_id=sale_id,
            score=score.value,
            reasons=score.reasons,
            marked=score.flag_marked,
        )
        if protection.bot_policy == BotPolicy.REFUSE:
            raise BotSuspected(
                "This request looks automated. Open the sale page in a browser to join.",
                extra={"score": score.value, "reasons": score.reasons},
            )
        if protection.bot_policy == BotPolicy.BACK_OF_QUEUE:
            return JoinVerdict(back_of_queue=True, score=score.value, reasons=score.reasons)
    return JoinVerdict(score=score.value, reasons=score.reasons)


def flag_later(
    *,
    user_id: int,
    ip: str,
    sale_id: str,
    score: int,
    reasons: list[str],
    marked: bool | None = None,
) -> None:
    """Record a flag through Celery, once per shopper and sale a minute (no PostgreSQL write
    on the refusal path). ``marked``: whether the scoring's round trip already set the
    once-a-minute marker (True: set by this request, False: set before; None: not tried)."""
    if marked is None:
        try:
            marked = bool(
                get_redis().set(
                    flag_marker_key(sale_id, user_id), 1, nx=True, ex=FLAG_MARKER_SECONDS
                )
            )
        except RedisError:
            return
    if not marked:
        return
    try:
        # No publish retries: a broker that is down must not slow the join.
        record_flag.apply_async((user_id, ip, sale_id, score, reasons), retry=False)
    except Exception:  # the broker being down must not change the verdict
        logger.warning("could not queue the bot flag of user %s", user_id)
