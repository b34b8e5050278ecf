"""Bot screening for waiting-room joins, and recording what it found.

The join screen runs in this order, cheapest refusal first: block list (process memory),
honeypot, proof of work (one hash here, its one use a SET NX in Redis), then the scored
signals. Everything Redis does for it (account signals, the challenge's use, the verdict, the
flag's marker) is one script, run inside the join's own (lua/join_screen.lua). Refusals write
nothing to PostgreSQL: a suspect's flag is queued in Redis once per shopper and sale a
minute, and recorded in batches by a periodic task (``flags_record_waiting``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from apps.core.errors import Forbidden, NotFound, ServiceUnavailable
from apps.core.lua import LuaScript
from apps.core.memory import ProcessMemory
from apps.core.redis import RedisError, get_redis, sale_key
from apps.sales.models import FlashSale
from apps.waiting_room.screening import ScreenStep

from . import pow
from .blocklist import is_blocked
from .scoring import FLAG_MARKER_SECONDS, WEIGHTS, WINDOW_SECONDS, request_score, screen_keys

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JoinVerdict:
    """What the screen decided about a waiting-room join."""

    allowed: bool = True
    back_of_queue: bool = False
    score: int = 0
    reasons: list[str] = field(default_factory=list)
    step: ScreenStep | None = None  # what is left to decide in the join's script


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


JOIN_SCREEN = Path(__file__).parent / "lua" / "join_screen.lua"
JOIN_SCREEN_SCRIPT = LuaScript(JOIN_SCREEN)


def join_screen_step(*, request, sale, user_id: int, body: dict) -> JoinVerdict:
    """The join screen as the waiting room runs it: the block list and what the request
    alone says (headers, page load, the proof of work's signature and answer) checked here,
    raising a 403 ApplicationError to refuse; the account signals, the challenge's one use
    and the verdict left to lua/join_screen.lua, run inside the join's own script (the
    verdict's ``step``; its ``settle`` raises the script's refusal or returns the verdict).
    With the sale's ``back_of_queue`` policy a suspect is let in at the back of the queue."""
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
    score = request_score(request=request, body=body)
    honeypot = "honeypot" in score.reasons
    spent_key = None
    if not honeypot:  # the honeypot refuses whatever the proof of work
        spent_key = pow.pow_check(
            sale_id=sale_id,
            required=protection.pow_difficulty,
            challenge=body.get("challenge"),
            nonce=body.get("nonce"),
        )
    keys, has_device = screen_keys(
        request=request, sale_id=sale_id, user_id=user_id, ip=ip, spent_key=spent_key
    )
    args = [
        user_id,
        f"{time.time():.3f}",
        WINDOW_SECONDS,
        "1" if has_device else "0",
        settings.BOT_ACCOUNTS_PER_IP,
        settings.BOT_ACCOUNTS_PER_DEVICE,
        score.value,
        protection.bot_threshold,
        protection.bot_policy,
        "1" if honeypot else "0",
        pow.spent_seconds() if spent_key else 0,
        FLAG_MARKER_SECONDS,
        WEIGHTS["many_accounts_per_ip"],
        WEIGHTS["many_accounts_per_device"],
        WEIGHTS["regular_timing"],
        ip,
        sale_id,
        *score.reasons,
    ]
    return JoinVerdict(step=ScreenStep(JOIN_SCREEN, keys, args, _settle))


def _settle(reply: list) -> JoinVerdict:
    """lua/join_screen.lua's reply as a verdict, or its refusal raised."""
    verdict, score = _text(reply[0]), int(reply[1])
    reasons = [_text(reason) for reason in reply[2:]]
    if verdict == "honeypot":
        raise BotSuspected("This request looks automated.", extra={"reasons": ["honeypot"]})
    if verdict == "pow_replayed":
        raise pow.PowReplayed()
    if verdict == "refuse":
        raise BotSuspected(
            "This request looks automated. Open the sale page in a browser to join.",
            extra={"score": score, "reasons": reasons},
        )
    return JoinVerdict(back_of_queue=verdict == "back", score=score, reasons=reasons)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def join_screen(*, request, sale, user_id: int, body: dict) -> JoinVerdict:
    """Screen a waiting-room join on its own (block list, honeypot, proof of work, bot
    signals; one Redis round trip): raises a 403 ApplicationError to refuse, returns the
    verdict otherwise. The join itself runs the same screen inside its own script."""
    step = join_screen_step(request=request, sale=sale, user_id=user_id, body=body).step
    try:
        reply = JOIN_SCREEN_SCRIPT(keys=step.keys, args=step.args)
    except RedisError:
        raise ServiceUnavailable("Try again in a moment.", code="screen_unavailable") from None
    return step.settle(reply)
