"""The waiting room: join, place (with the admission claim), finish, and the releaser tick.

One sale's room lives in Redis under the sale's hash tag (see keys.py and lua/):
- everyone who joins before the start gets a random score in a sorted set; at the start the
  set is sealed, so a shopper's rank there (ZRANK, O(log N)) is a uniformly random order that
  no longer changes; everyone who joins after the start gets the next ticket of a counter,
  strictly first come first served behind them;
- shoppers the bot screen sends to the back of the queue wait in a second lane with the same
  rules, served only when the main lane has nobody waiting;
- the releaser advances a "now serving" counter per lane by the sale's rate, capped by the
  active shoppers and by the units that could still be bought; admitting a batch is O(1),
  nobody is scanned. A shopper whose rank is reached claims an admission token once.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from apps.core.errors import (
    ApplicationError,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooEarly,
)
from apps.core.redis import RedisError, get_redis
from apps.core.times import isoformat_z
from apps.sales.models import FlashSale, SaleStatus
from apps.sales.selectors import SaleSnapshot

from . import redis_scripts
from .estimates import estimate_rate, wait_seconds
from .keys import room_keys
from .redis_scripts import Place, Tick
from .screening import ScreenStep
from .tokens import admission_token_issue

logger = logging.getLogger(__name__)

_random = secrets.SystemRandom()

STATUS_FOR_OUTCOME = {
    "WAITING": "waiting",
    "READY": "ready",
    "ADMITTED": "ready",
    "EXPIRED": "expired",
    "USED": "expired",
    "SOLD_OUT": "sold_out",
}


def _iso_ms(ms: int) -> str:
    return isoformat_z(datetime.fromtimestamp(ms / 1000, tz=UTC))


def sale_group(sale_id: object) -> str:
    """The channel-layer group of one sale's live updates."""
    return f"sale.{sale_id}"


def websocket_url(sale_id: object) -> str:
    return f"{settings.WS_PUBLIC_URL.rstrip('/')}/ws/sales/{sale_id}/"


def _closed(sale: SaleSnapshot) -> bool:
    return sale.status in (SaleStatus.CANCELLED, SaleStatus.COMPLETED)


def _opens_ms(sale: SaleSnapshot) -> int:
    return sale.starts_ms - sale.pre_queue_minutes * 60_000


def estimated_wait_seconds(
    *, sale: SaleSnapshot, position: int, measured_rate: float | None
) -> int:
    """From the admission rate the releaser measured, kept within its bounds (estimates.py);
    before the start the wait until the start plus the queue ahead at the configured rate."""
    until_start = (sale.starts_ms - time.time() * 1000) / 1000
    return wait_seconds(
        position=position,
        measured_rate=None if until_start > 0 else measured_rate,
        rate=sale.admission_rate,
        max_active=sale.max_active_shoppers,
        admission_seconds=sale.admission_token_seconds,
        until_start_seconds=until_start,
    )


def _body(sale: SaleSnapshot, place: Place) -> dict:
    status = STATUS_FOR_OUTCOME[place.outcome]
    rank = place.rank or 0
    serving = place.now_serving or 0
    if status != "waiting":
        position = wait = 0
    elif rank == 0:
        # Drawn at the start: on average half of those who joined before it are ahead.
        position = 0
        wait = estimated_wait_seconds(
            sale=sale, position=max(1, place.drawing // 2), measured_rate=None
        )
    else:
        position = max(0, rank - serving)
        wait = estimated_wait_seconds(
            sale=sale, position=position, measured_rate=place.measured_rate
        )
    body = {
        "position": position,
        "rank": rank,
        "estimated_wait_seconds": wait,
        "status": status,
        "websocket_url": websocket_url(sale.id),
        "now_serving": serving,
    }
    if place.outcome == "USED":
        body["admission_used"] = True
    if place.order_id:
        # The order the shopper's admission bought: its page shows its status and the way
        # to pay or the receipt (GET /api/v1/flash_sales/<id>/order says it in JSON).
        body["order_id"] = place.order_id
        body["order_url"] = f"{settings.SITE_URL}/orders/{place.order_id}/"
        body["units_held"] = place.units_held
    return body


def _admission(sale: SaleSnapshot, user_id: int, place: Place) -> dict:
    expires_s = (place.expires_ms or 0) // 1000
    token, _ = admission_token_issue(
        user_id=user_id,
        sale_id=sale.id,
        lifetime_seconds=sale.admission_token_seconds,
        jti=place.jti,
        expires_at=expires_s,
        rank=place.rank,
    )
    return {"admission_token": token, "admission_expires_at": _iso_ms(expires_s * 1000)}


def _place(
    sale: SaleSnapshot,
    *,
    mode: str,
    user_id: int,
    back_of_queue: bool = False,
    screen: ScreenStep | None = None,
) -> Place:
    try:
        screen_reply, place = redis_scripts.place(
            room_keys(sale.id),
            mode=mode,
            user_id=user_id,
            opens_ms=_opens_ms(sale),
            starts_ms=sale.starts_ms,
            ends_ms=sale.ends_ms,
            closed=_closed(sale),
            back_of_queue=back_of_queue,
            random_score=_random.random(),
            jti=uuid.uuid4().hex,
            admission_ms=sale.admission_token_seconds * 1000,
            max_per_user=sale.max_per_user,
            screen=screen,
        )
    except RedisError as exc:
        logger.warning("waiting room unavailable: %s", exc)
        raise ServiceUnavailable(
            "The waiting room is briefly unavailable; try again.", code="waiting_room_unavailable"
        ) from None
    if screen is not None:
        screen.settle(screen_reply)  # the screen's refusal, raised
    if place is None:  # refused by a screen whose settle did not say so: still refused
        raise Forbidden("You cannot join this waiting room.", code="join_refused")
    return place


def _answer(sale: SaleSnapshot, user_id: int, place: Place) -> dict:
    if place.outcome == "CLOSED":
        opens_ms = place.opens_ms or _opens_ms(sale)
        seconds = max(1, int((opens_ms - time.time() * 1000) // 1000))
        raise TooEarly(
            "The waiting room is not open yet.",
            code="waiting_room_closed",
            extra={"opens_at": _iso_ms(opens_ms), "opens_in_seconds": seconds},
            headers={"Retry-After": str(seconds)},
        )
    if place.outcome == "NOT_IN_QUEUE":
        raise NotFound("You have not joined this sale's waiting room.", code="not_in_queue")
    if place.outcome == "ENDED":
        raise ApplicationError(
            "This sale is over.", code="sale_ended", status=410, extra={"status": "expired"}
        )
    body = _body(sale, place)
    if place.outcome == "READY":
        body.update(_admission(sale, user_id, place))
    return body


class PurchaseLimitReached(Conflict):
    code = "purchase_limit_reached"


def waiting_room_join(
    *,
    sale: SaleSnapshot,
    user_id: int,
    back_of_queue: bool = False,
    screen: ScreenStep | None = None,
) -> dict:
    """Join (or re-join, keeping the place) and return the shopper's place; behind the join
    screen's step when given one, in the same round trip (screening.py).

    A shopper whose admission bought and who holds the most units allowed (reserved or
    paid) is refused with 409 and their order; one whose order ended unpaid, or who may
    still buy more, queues again at the back."""
    place = _place(sale, mode="join", user_id=user_id, back_of_queue=back_of_queue, screen=screen)
    if place.outcome == "USED":
        body = _body(sale, place)
        raise PurchaseLimitReached(
            f"You already have an order in this sale, and at most {sale.max_per_user} "
            "unit(s) per shopper are allowed.",
            extra={
                key: body[key]
                for key in ("status", "admission_used", "order_id", "order_url", "units_held")
                if key in body
            },
        )
    return _answer(sale, user_id, place)


def waiting_room_position(*, sale: SaleSnapshot, user_id: int, claim: bool = True) -> dict:
    """The shopper's place; once their rank is reached, their admission (claimed once: the
    same token comes back on every read until it expires)."""
    return _answer(sale, user_id, _place(sale, mode="claim" if claim else "peek", user_id=user_id))


def admission_finish(*, sale_id: object, user_id: int) -> bool:
    """The shopper bought: their admission stops counting against the active cap at once.
    Failing here only delays that until the token expires, so errors are logged, not raised."""
    try:
        return redis_scripts.finish(room_keys(sale_id), user_id=user_id)
    except RedisError as exc:
        logger.warning("could not mark admission of %s finished: %s", user_id, exc)
        return False


# --- The releaser -------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomSettings:
    """What the releaser needs about one sale, read from PostgreSQL about once a second."""

    sale_id: str
    status: str
    starts_ms: int
    ends_ms: int
    admission_rate: int
    max_active_shoppers: int
    admission_factor_percent: int
    admission_ms: int

    @property
    def closed(self) -> bool:
        return self.status in (SaleStatus.CANCELLED, SaleStatus.COMPLETED) or (
            time.time() * 1000 >= self.ends_ms
        )


def room_settings(sale: FlashSale) -> RoomSettings:
    return RoomSettings(
        sale_id=str(sale.id),
        status=sale.status,
        starts_ms=int(sale.start_time.timestamp() * 1000),
        ends_ms=int(sale.end_time.timestamp() * 1000),
        admission_rate=0 if sale.admission_paused else sale.admission_rate,
        max_active_shoppers=sale.max_active_shoppers,
        admission_factor_percent=int(sale.admission_factor * 100),
        admission_ms=sale.admission_token_seconds * 1000,
    )


def waiting_room_tick(*, room: RoomSettings, units_reserved: int) -> Tick:
    """One release step for one sale (safe to run from several releasers at once: each tick
    credits only the time since the previous one, whoever ran it)."""
    return redis_scripts.tick(
        room_keys(room.sale_id),
        rate=room.admission_rate,
        max_active=room.max_active_shoppers,
        units_reserved=units_reserved,
        factor_percent=room.admission_factor_percent,
        admission_ms=room.admission_ms,
        starts_ms=room.starts_ms,
        closed=room.closed,
        longest_gap_ms=settings.WAITING_ROOM_LONGEST_GAP_MS,
    )


def broadcast_phase(room: RoomSettings, tick: Tick) -> str:
    """The sale's phase as shoppers see it: scheduled, live, sold_out, ended or cancelled."""
    if room.status == SaleStatus.CANCELLED:
        return "cancelled"
    if tick.phase == "closed":
        return "ended"
    if tick.phase == "scheduled":
        return "scheduled"
    if tick.units_left == 0:
        return "sold_out"
    return "live"


def sale_broadcast(*, sale_id: object, message: dict, force: bool = False) -> bool:
    """Send the sale's state to everyone watching it, as often as the page needs it: a change
    of the stock at most every WAITING_ROOM_BROADCAST_SECONDS (the live counter), a change of
    the queue's figures alone (now serving, waiting, rate) at most every
    WAITING_ROOM_QUEUE_BROADCAST_SECONDS, a phase change at once, an unchanged state only as a
    heartbeat. One publish per sale (pub/sub channel layer), with the message encoded once:
    each ws process writes that text to its sockets as it is."""
    keys = room_keys(sale_id)
    redis = get_redis()
    encoded = json.dumps(message, sort_keys=True)
    previous = redis.get(keys.broadcast_last)
    if previous is not None and previous.decode() == encoded and not force:
        return False
    last = json.loads(previous) if previous else {}
    gate_ms = int(settings.WAITING_ROOM_BROADCAST_SECONDS * 1000)
    if force or last.get("phase") != message.get("phase"):
        redis.set(keys.broadcast_gate, 1, px=gate_ms)
    else:
        queue_only = last.get("units_left") == message.get("units_left")
        if queue_only and redis.exists(keys.broadcast_queue_gate):
            return False
        if not redis.set(keys.broadcast_gate, 1, nx=True, px=gate_ms):
            return False
    pipe = redis.pipeline(transaction=False)
    pipe.set(
        keys.broadcast_queue_gate, 1, px=int(settings.WAITING_ROOM_QUEUE_BROADCAST_SECONDS * 1000)
    )
    pipe.set(keys.broadcast_last, encoded, ex=settings.WAITING_ROOM_HEARTBEAT_SECONDS)
    pipe.execute()
    async_to_sync(get_channel_layer().group_send)(
        sale_group(sale_id), {"type": "sale.update", "sale": message, "text": encoded}
    )
    return True


def sale_message(room: RoomSettings, tick: Tick) -> dict:
    phase = broadcast_phase(room, tick)
    return {
        "type": "sale",
        "sale_id": room.sale_id,
        "status": phase,
        "phase": phase,
        "now_serving": tick.now_serving,
        "units_left": tick.units_left,
        "admission_rate": round(
            estimate_rate(
                measured_rate=tick.measured_rate,
                rate=room.admission_rate,
                max_active=room.max_active_shoppers,
                admission_seconds=room.admission_ms / 1000,
            ),
            1,
        ),
        "waiting": tick.waiting,
    }
