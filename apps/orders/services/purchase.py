"""The purchase hot path: Redis filters, PostgreSQL guards, refusals never touch PostgreSQL.

1. A per-process memory of sold-out sales, with the shoppers who took a hold in them,
   refuses everyone else with no Redis and no PostgreSQL (sold_out.py).
2. One Lua script checks the idempotency record, the start/end by Redis's clock, the
   shopper's limit and the stock, takes specific unit numbers from the pool and spends the
   admission: the hold.
3. One transaction, shared with the purchases waiting at that moment (group_commit.py),
   inserts the order, points exactly those unit rows at it (only if still free) and raises
   the shopper's tally within their limit; PostgreSQL refuses anything that would oversell,
   whatever Redis believed. After the commit, one Redis round trip per group forgets the
   holds as in flight and finishes the admissions.
4. When PostgreSQL refuses or fails, the Redis hold (and the admission) is given back before
   answering.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from apps.core.errors import ApplicationError, Forbidden, Gone, ServiceUnavailable, TooEarly
from apps.core.redis import RedisError
from apps.core.times import isoformat_z
from apps.inventory import redis_scripts
from apps.inventory.keys import sale_keys
from apps.inventory.redis_scripts import ReserveOutcome, ReserveResult
from apps.inventory.services import InventoryUnavailable, inventory_ensure_primed
from apps.inventory.tasks import reconcile_sale
from apps.sales.models import SaleStatus
from apps.sales.selectors import SaleSnapshot
from apps.waiting_room.keys import room_keys

from .degraded import order_reserve_degraded
from .group_commit import HoldVerdict, group_commit, holds_confirm
from .reservations import (
    AlreadyReserved,
    Hold,
    Reservation,
    SoldOut,
    hold_created_reservation,
    hold_recorded_whole,
    orders_insert_holding_units,
    request_fingerprint,
    reservation_replay,
    reservation_replay_from_record,
)
from .sold_out import sale_remember_sold_out, sold_out_refuses

logger = logging.getLogger(__name__)


def sold_out_refusal(*, sale_id: str, user_id: int) -> None:
    """Raise SoldOut when this process knows the sale sold out and the shopper took no hold
    in it (so cannot be replaying a success): no Redis, no PostgreSQL (sold_out.py). A
    holder goes on to reserve.lua, which replays their order or refuses."""
    if sold_out_refuses(sale_id, user_id):
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
    purchase_check(sale=sale, quantity=quantity, product_id=product_id)
    hold = Hold(
        sale=sale,
        user_id=user_id,
        quantity=quantity,
        idempotency_key=idempotency_key,
        order_id=str(uuid.uuid4()),
        units=[],
        admission_key=room_keys(sale.id).admission_used(admission.jti) if admission else None,
    )
    try:
        result = hold_take(hold, admission=admission)
    except RedisError as exc:
        # Degraded mode: PostgreSQL alone guards, at a capped concurrency.
        logger.warning("redis unavailable for purchase, degraded mode: %s", exc)
        return order_reserve_degraded(
            sale=sale, user_id=user_id, quantity=quantity, idempotency_key=idempotency_key
        )
    match result.outcome:
        case ReserveOutcome.OK:
            return order_from_hold(
                dataclasses.replace(hold, units=result.units, units_left=result.units_left)
            )
        case ReserveOutcome.REPLAY:
            return reservation_replay_from_record(
                sale=sale,
                user_id=user_id,
                quantity=quantity,
                idempotency_key=idempotency_key,
                record=result.record or "",
            )
        case ReserveOutcome.ADMISSION_USED:
            raise Forbidden(
                "This admission was already used for a purchase.", code="admission_used"
            )
        case ReserveOutcome.SOLD_OUT:
            if result.restocking:
                raise SoldOut(
                    "Sold out for the moment: units are coming back; try again in a second.",
                    headers={"Retry-After": "1"},
                )
            if result.units_left == 0:
                sale_remember_sold_out(sale.id)
            raise SoldOut(
                "Sold out: every unit is taken."
                if result.units_left == 0
                else f"Only {result.units_left} unit(s) left."
            )
        case ReserveOutcome.LIMIT:
            raise AlreadyReserved(
                f"You already hold {result.held} unit(s); the limit is {sale.max_per_user}."
            )
        case ReserveOutcome.NOT_STARTED:
            seconds = max(1, (result.ms_to_start or 0) // 1000)
            raise TooEarly(
                "The sale has not started yet.",
                extra={"starts_at": isoformat_z(sale.starts_at), "starts_in_seconds": seconds},
                headers={"Retry-After": str(seconds)},
            )
        case ReserveOutcome.ENDED:
            raise Gone("This sale has ended.", code="sale_ended")
    raise ServiceUnavailable(
        "Inventory is being prepared; try again.", code="inventory_unavailable"
    )


def purchase_check(*, sale: SaleSnapshot, quantity: int, product_id: str | None) -> None:
    """What the sale's snapshot refuses without asking Redis or PostgreSQL."""
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


def hold_take(hold: Hold, *, admission=None) -> ReserveResult:
    """reserve.lua for ``hold``: one call, or two when the sale's pool had to be primed."""
    sale = hold.sale
    result = None
    for _attempt in range(2):
        result = redis_scripts.reserve(
            sale_keys(sale.id),
            user_id=hold.user_id,
            quantity=hold.quantity,
            max_per_user=sale.max_per_user,
            fingerprint=request_fingerprint(quantity=hold.quantity),
            idempotency_key=hold.idempotency_key,
            idempotency_ttl=settings.IDEMPOTENCY_TTL_SECONDS,
            starts_ms=sale.starts_ms,
            ends_ms=sale.ends_ms,
            order_id=hold.order_id,
            admission_key=hold.admission_key,
            admission_jti=admission.jti if admission else None,
            # Kept until the token could no longer be presented (its expiry plus the leeway).
            admission_ttl=max(1, admission.expires_at - int(time.time()) + 30) if admission else 0,
        )
        if result.outcome != ReserveOutcome.NOT_PRIMED:
            return result
        try:
            inventory_ensure_primed(sale_id=sale.id)
        except (InventoryUnavailable, RedisError, DatabaseError):
            raise ServiceUnavailable(
                "Inventory is being prepared; try again.", code="inventory_unavailable"
            ) from None
    return result


def order_from_hold(hold: Hold) -> Reservation:
    """Commit the hold as an order: with the holds waiting at the same moment in one
    transaction (group commit), or alone when the caller is inside a transaction of its own
    or the group could not take it."""
    if settings.ORDER_GROUP_COMMIT and not connection.in_atomic_block:
        verdict, recorded = group_commit.hold_commit(hold)
        if verdict is HoldVerdict.RECORDED:
            return hold_created_reservation(hold, recorded)
        if verdict is HoldVerdict.UNAVAILABLE:
            hold_give_back(hold)
            raise ServiceUnavailable(
                "Orders are briefly unavailable; nothing was reserved.",
                code="database_unavailable",
            )
    return order_from_hold_alone(hold)


class _Refused(Exception):
    def __init__(self, error: ApplicationError, *, units_free: bool):
        self.error = error
        self.units_free = units_free


def order_from_hold_alone(hold: Hold) -> Reservation:
    """Commit the hold as an order in a transaction of its own, where a refusal or an error
    is this hold's alone: the hold (and the admission) goes back before the answer."""
    sale = hold.sale
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            (recorded,) = orders_insert_holding_units(cursor, [hold])
            if recorded.units_taken != hold.quantity:
                raise _Refused(SoldOut("Those units were just taken; try again."), units_free=False)
            if not hold_recorded_whole(hold, recorded):
                raise _Refused(
                    AlreadyReserved(
                        f"You already hold the most units allowed ({sale.max_per_user})."
                    ),
                    units_free=True,
                )
    except _Refused as refused:
        hold_give_back(hold, units_free=refused.units_free)
        if not refused.units_free:
            _reconcile_soon(sale.id)
        raise refused.error from None
    except IntegrityError as exc:
        if _constraint(exc) != "order_idempotency_key_per_user":
            hold_give_back(hold)
            logger.warning("postgres refused a reservation: %s", exc)
            raise ServiceUnavailable(
                "The order could not be recorded; nothing was reserved.",
                code="database_unavailable",
            ) from None
        # The same idempotency key already made an order (Redis lost its record): that
        # order is the answer, and this hold goes back (the admission stays spent).
        try:
            replay = reservation_replay(
                sale=sale,
                user_id=hold.user_id,
                quantity=hold.quantity,
                idempotency_key=hold.idempotency_key,
            )
        except BaseException:
            hold_give_back(hold)
            raise
        if replay is None:
            hold_give_back(hold)
            raise ServiceUnavailable("Try again.", code="inventory_unavailable") from None
        hold_give_back(hold, admission_too=False)
        return replay
    except DatabaseError as exc:
        logger.warning("postgres refused a reservation: %s", exc)
        hold_give_back(hold)
        raise ServiceUnavailable(
            "Orders are briefly unavailable; nothing was reserved.", code="database_unavailable"
        ) from None
    except BaseException:
        hold_give_back(hold)
        raise
    holds_confirm([hold])
    return hold_created_reservation(hold, recorded)


def hold_give_back(hold: Hold, *, units_free: bool = True, admission_too: bool = True) -> None:
    """Undo the Redis hold: its units (unless PostgreSQL said someone else holds them), the
    shopper's count, its idempotency record and (``admission_too``) the admission it spent,
    so the shopper may try again."""
    try:
        redis_scripts.giveback(
            sale_keys(hold.sale.id),
            order_id=hold.order_id,
            user_id=hold.user_id,
            idempotency_key=hold.idempotency_key,
            admission_key=hold.admission_key if admission_too else None,
            units_free=units_free,
        )
    except RedisError:
        logger.warning("could not give back hold %s; the orphan sweep will", hold.order_id)


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _reconcile_soon(sale_id: str) -> None:
    try:
        transaction.on_commit(lambda: reconcile_sale.delay(sale_id))
    except Exception:  # the broker being down must not fail the request
        logger.warning("could not schedule reconciliation of sale %s", sale_id)
