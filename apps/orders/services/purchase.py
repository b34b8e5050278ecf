"""The purchase hot path: Redis filters, PostgreSQL guards, refusals never touch PostgreSQL.

1. A per-process memory of sold-out sales answers most refusals with one Redis EXISTS (is
   this request a replay?) instead of the reservation script; never a PostgreSQL query.
2. One Lua script checks the idempotency record, the start/end by Redis's clock, the
   shopper's limit and the stock, and takes specific unit numbers from the pool.
3. One SQL statement inserts the order, points exactly those unit rows at it (only if still
   free) and raises the shopper's tally within their limit; PostgreSQL refuses anything that
   would oversell, whatever Redis believed.
4. When PostgreSQL refuses or fails, the Redis hold is given back before returning.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from apps.core.errors import (
    ApplicationError,
    Conflict,
    Forbidden,
    Gone,
    ServiceUnavailable,
    TooEarly,
)
from apps.core.memory import ProcessMemory
from apps.core.redis import RedisError, get_redis, script_pipeline
from apps.core.times import isoformat_z
from apps.inventory import redis_scripts
from apps.inventory.keys import sale_keys
from apps.inventory.services import InventoryUnavailable, inventory_ensure_primed
from apps.inventory.tasks import reconcile_sale
from apps.sales.models import SaleStatus
from apps.sales.selectors import SaleSnapshot
from apps.waiting_room import redis_scripts as room_scripts
from apps.waiting_room.keys import room_keys

from ..models import Order
from .degraded import order_reserve_degraded
from .reservations import (
    AlreadyReserved,
    IdempotencyKeyReused,
    Reservation,
    SoldOut,
    _body_from_order,
    order_insert_holding_units,
    order_url,
    payment_url,
    request_fingerprint,
)

logger = logging.getLogger(__name__)

_sold_out = ProcessMemory("sold_out_sales", seconds="SOLD_OUT_MEMORY_SECONDS")


def sale_remember_sold_out(sale_id: str) -> None:
    _sold_out.set(sale_id, True)


def sale_known_sold_out(sale_id: str) -> bool:
    return _sold_out.get(sale_id, False)


def sold_out_refusal(*, sale_id: str, user_id: int, idempotency_key: str) -> None:
    """Raise SoldOut when this process remembers the sale sold out, unless the request is
    a replay (its idempotency record exists): a replay always gets its order back.
    One Redis round trip and no PostgreSQL; with Redis away the memory answers alone."""
    if not sale_known_sold_out(sale_id):
        return
    try:
        replay = get_redis().exists(sale_keys(sale_id).idempotency(user_id, idempotency_key))
    except RedisError:
        replay = False
    if not replay:
        raise SoldOut("Sold out: every unit is taken.")


def order_reserve(
    *,
    sale: SaleSnapshot,
    user_id: int,
    quantity: int,
    idempotency_key: str,
    product_id: str | None = None,
    admission=None,
) -> Reservation:
    """Reserve ``quantity`` units of ``sale`` for the shopper, or raise an ApplicationError.

    ``admission`` (apps.waiting_room.tokens.Admission), when given, is spent by a success:
    presenting it again is refused, except as a replay of the same request."""
    if product_id is not None and product_id != sale.product_id:
        raise ApplicationError(
            "product_id does not match this sale's product.", code="product_mismatch", status=400
        )
    if quantity > sale.max_per_user:
        raise AlreadyReserved(
            f"At most {sale.max_per_user} unit(s) per shopper in this sale.",
            code="quantity_over_limit",
        )
    if sale.status == SaleStatus.CANCELLED:
        raise Gone("This sale was cancelled.", code="sale_cancelled")
    if sale.status == SaleStatus.COMPLETED:
        raise Gone("This sale has ended.", code="sale_ended")

    fingerprint = request_fingerprint(quantity=quantity)
    keys = sale_keys(sale.id)
    order_id = str(uuid.uuid4())
    admission_key = admission_jti = None
    admission_ttl = 0
    if admission is not None:
        admission_jti = admission.jti
        admission_key = room_keys(sale.id).admission_used(admission.jti)
        # Kept until the token could no longer be presented (its expiry plus the leeway).
        admission_ttl = max(1, admission.expires_at - int(time.time()) + 30)
    result = None
    for _attempt in range(2):
        try:
            result = redis_scripts.reserve(
                keys,
                user_id=user_id,
                quantity=quantity,
                max_per_user=sale.max_per_user,
                fingerprint=fingerprint,
                idempotency_key=idempotency_key,
                idempotency_ttl=settings.IDEMPOTENCY_TTL_SECONDS,
                starts_ms=sale.starts_ms,
                ends_ms=sale.ends_ms,
                order_id=order_id,
                admission_key=admission_key,
                admission_jti=admission_jti,
                admission_ttl=admission_ttl,
            )
        except RedisError as exc:
            # Degraded mode: PostgreSQL alone guards, at a capped concurrency.
            logger.warning("redis unavailable for purchase, degraded mode: %s", exc)
            return order_reserve_degraded(
                sale=sale, user_id=user_id, quantity=quantity, idempotency_key=idempotency_key
            )
        if result.outcome != "NOT_PRIMED":
            break
        try:
            inventory_ensure_primed(sale_id=sale.id)
        except (InventoryUnavailable, RedisError, DatabaseError):
            raise ServiceUnavailable(
                "Inventory is being prepared; try again.", code="inventory_unavailable"
            ) from None

    outcome = result.outcome
    if outcome == "OK":
        try:
            reservation = _reserve_in_postgres(
                sale=sale,
                user_id=user_id,
                quantity=quantity,
                idempotency_key=idempotency_key,
                order_id=order_id,
                units=result.units,
                units_left=result.units_left,
                fingerprint=fingerprint,
                admission_finished=admission is not None,
            )
        except BaseException:
            if admission_key:
                _admission_unspend(admission_key)  # nothing was bought: it may try again
            raise
        return reservation
    if outcome == "ADMISSION_USED":
        raise Forbidden("This admission was already used for a purchase.", code="admission_used")
    if outcome == "REPLAY":
        return _replay(
            sale=sale,
            user_id=user_id,
            record=result.record or "",
            fingerprint=fingerprint,
            idempotency_key=idempotency_key,
        )
    if outcome == "SOLD_OUT":
        if result.units_left == 0:
            sale_remember_sold_out(sale.id)
        raise SoldOut(
            "Sold out: every unit is taken."
            if result.units_left == 0
            else f"Only {result.units_left} unit(s) left."
        )
    if outcome == "LIMIT":
        raise AlreadyReserved(
            f"You already hold {result.held} unit(s); the limit is {sale.max_per_user}."
        )
    if outcome == "NOT_STARTED":
        seconds = max(1, (result.ms_to_start or 0) // 1000)
        raise TooEarly(
            "The sale has not started yet.",
            extra={"starts_at": isoformat_z(sale.starts_at), "starts_in_seconds": seconds},
            headers={"Retry-After": str(seconds)},
        )
    if outcome == "ENDED":
        raise Gone("This sale has ended.", code="sale_ended")
    raise ServiceUnavailable(
        "Inventory is being prepared; try again.", code="inventory_unavailable"
    )


class _Refused(Exception):
    def __init__(self, units_free: bool, error: ApplicationError):
        self.units_free = units_free
        self.error = error


def _reserve_in_postgres(
    *,
    sale: SaleSnapshot,
    user_id: int,
    quantity: int,
    idempotency_key: str,
    order_id: str,
    units: list[int],
    units_left: int | None,
    fingerprint: str,
    admission_finished: bool = False,
) -> Reservation:
    keys = sale_keys(sale.id)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            reserved_until, taken, tally = order_insert_holding_units(
                cursor,
                sale=sale,
                user_id=user_id,
                quantity=quantity,
                idempotency_key=idempotency_key,
                order_id=order_id,
                units=units,
            )
            if taken != quantity:
                raise _Refused(False, SoldOut("Those units were just taken; try again."))
            if tally != 1:
                raise _Refused(
                    True,
                    AlreadyReserved(
                        f"You already hold the most units allowed ({sale.max_per_user})."
                    ),
                )
    except _Refused as refused:
        _giveback(keys, order_id, user_id, idempotency_key, units_free=refused.units_free)
        if not refused.units_free:
            _reconcile_soon(sale.id)
        raise refused.error from None
    except IntegrityError as exc:
        _giveback(keys, order_id, user_id, idempotency_key, units_free=True)
        if _constraint(exc) != "order_idempotency_key_per_user":
            logger.warning("postgres refused a reservation: %s", exc)
            raise ServiceUnavailable(
                "The order could not be recorded; nothing was reserved.",
                code="database_unavailable",
            ) from None
        # The same idempotency key already made an order (Redis lost its record).
        return _replay_from_postgres(
            sale=sale, user_id=user_id, quantity=quantity, idempotency_key=idempotency_key
        )
    except DatabaseError as exc:
        logger.warning("postgres refused a reservation: %s", exc)
        _giveback(keys, order_id, user_id, idempotency_key, units_free=True)
        raise ServiceUnavailable(
            "Orders are briefly unavailable; nothing was reserved.", code="database_unavailable"
        ) from None
    except BaseException:
        _giveback(keys, order_id, user_id, idempotency_key, units_free=True)
        raise

    body = {
        "order_id": order_id,
        "status": "reserved",
        "reservation_expires_at": isoformat_z(reserved_until),
        "payment_url": payment_url(order_id),
        "order_url": order_url(order_id),
        "remaining_inventory": units_left,
    }
    # One round trip after the commit: forget the in-flight hold, keep the reply for replays,
    # and (with an admission) stop counting the shopper as active.
    try:
        pipe = script_pipeline(keys.inflight)
        redis_scripts.confirm(
            keys,
            user_id=user_id,
            idempotency_key=idempotency_key,
            order_id=order_id,
            record=f"done|{fingerprint}|{json.dumps(body)}",
            client=pipe,
        )
        if admission_finished:
            room_scripts.finish(room_keys(sale.id), user_id=user_id, order_id=order_id, client=pipe)
        pipe.execute()
    except RedisError as exc:
        # The orphan sweep forgets the hold; an unfinished admission stops counting as
        # active when its token expires.
        logger.warning("could not confirm order %s in Redis: %s", order_id, exc)
    return Reservation(body=body, created=True)


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _admission_unspend(admission_key: str) -> None:
    try:
        get_redis().delete(admission_key)
    except RedisError:
        logger.warning("could not release admission marker %s", admission_key)


def _giveback(keys, order_id, user_id, idempotency_key, *, units_free: bool) -> None:
    try:
        redis_scripts.giveback(
            keys,
            order_id=order_id,
            user_id=user_id,
            idempotency_key=idempotency_key,
            units_free=units_free,
        )
    except RedisError:
        logger.warning("could not give back hold %s; the orphan sweep will", order_id)


def _reconcile_soon(sale_id: str) -> None:
    try:
        transaction.on_commit(lambda: reconcile_sale.delay(sale_id))
    except Exception:  # the broker being down must not fail the request
        logger.warning("could not schedule reconciliation of sale %s", sale_id)


def _replay(
    *, sale: SaleSnapshot, user_id: int, record: str, fingerprint: str, idempotency_key: str
) -> Reservation:
    state, _, rest = record.partition("|")
    stored_fingerprint, _, payload = rest.partition("|")
    if stored_fingerprint != fingerprint:
        raise IdempotencyKeyReused("This X-Idempotency-Key was used with a different request body.")
    if state == "done":
        # The reply is kept for its order id; the order is shown as it is now (paid,
        # cancelled, expired), by one primary-key read.
        stored = json.loads(payload)
        order = Order.objects.filter(id=stored["order_id"]).first()
        if order is None:
            return Reservation(body=stored, created=False)
        return Reservation(
            body=_body_from_order(order, stored.get("remaining_inventory")), created=False
        )
    order = Order.objects.filter(id=payload).first()
    if order is None:
        raise Conflict(
            "The first request with this key is still being processed.",
            code="request_in_progress",
            headers={"Retry-After": "1"},
        )
    return Reservation(body=_body_from_order(order), created=False)


def _replay_from_postgres(
    *, sale: SaleSnapshot, user_id: int, quantity: int, idempotency_key: str
) -> Reservation:
    order = Order.objects.filter(user_id=user_id, idempotency_key=idempotency_key).first()
    if order is None:
        raise ServiceUnavailable("Try again.", code="inventory_unavailable")
    if str(order.sale_id) != sale.id or order.quantity != quantity:
        raise IdempotencyKeyReused("This X-Idempotency-Key was used with a different request body.")
    return Reservation(body=_body_from_order(order), created=False)
