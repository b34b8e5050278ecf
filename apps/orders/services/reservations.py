"""What a reservation is, shared by the fast path (purchase) and the degraded path: the hold
on its way to becoming an order, the one statement that records holds as orders, the reply
body, the refusals, the replay of an earlier request, and the replay records rebuilt from
PostgreSQL after Redis lost a sale's keys."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.db.models.functions import Now

from apps.core.errors import Conflict, Gone, Unprocessable
from apps.core.redis import get_redis
from apps.core.times import isoformat_z
from apps.inventory.keys import sale_keys
from apps.inventory.services import (
    BUYERS_RAISED_SQL,
    UNITS_TAKEN_SQL,
    UnitsClaim,
    units_claims_params,
    units_left,
)
from apps.sales.selectors import SaleSnapshot

from ..models import Order, OrderStatus


@dataclass(frozen=True)
class Reservation:
    body: dict
    created: bool  # False for a replay of an earlier request


class SoldOut(Gone):
    code = "sold_out"


class AlreadyReserved(Conflict):
    code = "already_reserved"


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"


class RequestInProgress(Conflict):
    code = "request_in_progress"


@functools.cache
def request_fingerprint(*, quantity: int) -> str:
    """What makes two purchase bodies "the same": the quantity (a product_id, when sent,
    must be the sale's own, so it adds nothing). PostgreSQL can rebuild it from an order."""
    return hashlib.sha256(f"q{quantity}".encode()).hexdigest()[:16]


def payment_url(order_id: object) -> str:
    return f"{settings.SITE_URL}/orders/{order_id}/pay/"


def order_url(order_id: object) -> str:
    return f"{settings.SITE_URL}/orders/{order_id}/"


# ------------------------------------------------------------------------------ the reply
def reservation_body(
    *,
    order_id: object,
    status: str,
    reserved_until: datetime | None,
    units_left: int | None,
    degraded: bool = False,
) -> dict:
    """The purchase's reply, for a new order or an earlier one as it is now: ``payment_url``
    only while it can still be paid; ``"degraded": true`` when PostgreSQL alone served it."""
    body = {
        "order_id": str(order_id),
        "status": status.lower(),
        "reservation_expires_at": isoformat_z(reserved_until),
        "payment_url": payment_url(order_id) if status == OrderStatus.RESERVED else None,
        "order_url": order_url(order_id),
        "remaining_inventory": units_left,
    }
    if degraded:
        body["degraded"] = True
    return body


# ------------------------------------------------------------------------------ the hold
@dataclass(frozen=True)
class Hold:
    """Units handed to one purchase (by Redis, or picked by PostgreSQL in degraded mode), on
    their way to becoming the order ``order_id``."""

    sale: SaleSnapshot
    user_id: int
    quantity: int
    idempotency_key: str
    order_id: str
    units: list[int]
    units_left: int | None = None  # the pool after this hold, for the reply
    admission_key: str | None = None  # the admission marker it set, spent by a success

    def claim(self) -> UnitsClaim:
        return UnitsClaim(
            order_id=self.order_id,
            sale_id=self.sale.id,
            user_id=self.user_id,
            quantity=self.quantity,
            units=self.units,
            max_units=self.sale.max_per_user,
        )


@dataclass(frozen=True)
class HoldRecorded:
    """One hold's outcome in the statement below. Only a hold with all its units taken and
    its shopper's tally raised may be committed."""

    order_id: str
    reserved_until: datetime
    units_taken: int
    tally_raised: bool


_ORDERS_INSERT_SQL = f"""
WITH new_order AS (
    INSERT INTO orders_order (id, user_id, sale_id, quantity, amount, currency, status,
        idempotency_key, reserved_at, reserved_until, status_reason, created_at, updated_at)
    SELECT id, user_id, sale_id, quantity, amount, currency, 'RESERVED', key, now(),
        now() + make_interval(secs => window_seconds), '', now(), now()
    FROM unnest(%(order_ids)s::uuid[], %(buyer_user_ids)s::bigint[], %(buyer_sale_ids)s::uuid[],
        %(buyer_quantities)s::int[], %(amounts)s::numeric[], %(currencies)s::text[],
        %(keys)s::text[], %(windows)s::int[])
        AS hold(id, user_id, sale_id, quantity, amount, currency, key, window_seconds)
    RETURNING id, sale_id, user_id, reserved_until
), {UNITS_TAKEN_SQL}, {BUYERS_RAISED_SQL}
SELECT new_order.id, new_order.reserved_until,
    (SELECT count(*) FROM units_taken WHERE units_taken.order_id = new_order.id),
    EXISTS (SELECT 1 FROM buyers_raised WHERE buyers_raised.sale_id = new_order.sale_id
            AND buyers_raised.user_id = new_order.user_id)
FROM new_order
"""


def orders_insert_holding_units(cursor, holds: list[Hold]) -> list[HoldRecorded]:
    """In one statement, for every hold: insert its order, point exactly its units at it
    (only those still free) and raise its shopper's tally within the limit. Returns each
    hold's outcome, in the holds' order; the caller rolls back unless every one is whole
    (``hold_recorded_whole``). A shopper appears at most once in ``holds``."""
    params = units_claims_params([hold.claim() for hold in holds])
    params.update(
        order_ids=[hold.order_id for hold in holds],
        amounts=[hold.sale.unit_price * hold.quantity for hold in holds],
        currencies=[hold.sale.currency for hold in holds],
        keys=[hold.idempotency_key for hold in holds],
        windows=[hold.sale.reservation_seconds for hold in holds],
    )
    # Bound on the server (psycopg's binary arrays, not quoted in Python) and, unless a
    # transaction-mode pooler sits in between, prepared once per connection: the statement is
    # planned once, not per group (docs/benchmarks.md, "reserve").
    # psycopg's errors become Django's, as through ``cursor.execute``.
    with cursor.db.wrap_database_errors, psycopg.Cursor(cursor.connection) as server_cursor:
        server_cursor.execute(
            _ORDERS_INSERT_SQL, params, prepare=settings.DATABASE_PREPARED_STATEMENTS or None
        )
        rows = {str(row[0]): row for row in server_cursor.fetchall()}
    return [
        HoldRecorded(
            order_id=hold.order_id,
            reserved_until=rows[hold.order_id][1],
            units_taken=rows[hold.order_id][2],
            tally_raised=rows[hold.order_id][3],
        )
        for hold in holds
    ]


def hold_recorded_whole(hold: Hold, recorded: HoldRecorded) -> bool:
    return recorded.units_taken == hold.quantity and recorded.tally_raised


def hold_created_reservation(hold: Hold, recorded: HoldRecorded, *, degraded=False) -> Reservation:
    """The 201 of a hold committed as an order."""
    return Reservation(
        body=reservation_body(
            order_id=hold.order_id,
            status=OrderStatus.RESERVED,
            reserved_until=recorded.reserved_until,
            units_left=hold.units_left,
            degraded=degraded,
        ),
        created=True,
    )


# ------------------------------------------------------------------------------ replays
_UNKNOWN = object()


def reservation_replay(
    *,
    sale: SaleSnapshot,
    user_id: int,
    quantity: int,
    idempotency_key: str,
    units_left_then: object = _UNKNOWN,
    degraded: bool = False,
) -> Reservation | None:
    """The order an earlier request with this key made, as it is now (one read by the
    unique key), or None when there is none yet. The same key with another body (another
    sale, another quantity) is refused. ``units_left_then``: the figure of the first reply,
    when known; else the pool's now."""
    order = Order.objects.filter(user_id=user_id, idempotency_key=idempotency_key).first()
    if order is None:
        return None
    if str(order.sale_id) != sale.id or order.quantity != quantity:
        raise IdempotencyKeyReused("This X-Idempotency-Key was used with a different request body.")
    if units_left_then is _UNKNOWN:
        units_left_then = None if degraded else units_left(sale_id=order.sale_id)
    return Reservation(
        body=reservation_body(
            order_id=order.id,
            status=order.status,
            reserved_until=order.reserved_until,
            units_left=units_left_then,
            degraded=degraded,
        ),
        created=False,
    )


def replay_record_text(*, fingerprint: str, order_id: object, units_left_then: int | None) -> str:
    """The idempotency record reserve.lua writes ("hold|fingerprint|order id|units left")."""
    left = "" if units_left_then is None else str(units_left_then)
    return f"hold|{fingerprint}|{order_id}|{left}"


@dataclass(frozen=True)
class ReplayRecord:
    fingerprint: str
    units_left_then: object  # int | None, or _UNKNOWN


def replay_record_parse(text: str) -> ReplayRecord:
    """``hold|fingerprint|order id|units left`` (older records: ``pending|fingerprint|order
    id`` and ``done|fingerprint|reply JSON``)."""
    state, _, rest = text.partition("|")
    fingerprint, _, payload = rest.partition("|")
    if state == "done":
        return ReplayRecord(fingerprint, json.loads(payload).get("remaining_inventory"))
    _order_id, found, left = payload.partition("|")
    if not found:
        return ReplayRecord(fingerprint, _UNKNOWN)
    return ReplayRecord(fingerprint, int(left) if left else None)


def reservation_replay_from_record(
    *, sale: SaleSnapshot, user_id: int, quantity: int, idempotency_key: str, record: str
) -> Reservation:
    """A replay Redis recognised: the same body gets the order as it is now; while the
    first request has not committed it yet, 409 with Retry-After."""
    parsed = replay_record_parse(record)
    if parsed.fingerprint != request_fingerprint(quantity=quantity):
        raise IdempotencyKeyReused("This X-Idempotency-Key was used with a different request body.")
    replay = reservation_replay(
        sale=sale,
        user_id=user_id,
        quantity=quantity,
        idempotency_key=idempotency_key,
        units_left_then=parsed.units_left_then,
    )
    if replay is None:
        raise RequestInProgress(
            "The first request with this key is still being processed.",
            headers={"Retry-After": "1"},
        )
    return replay


def idempotency_records_restore(*, sale_id: object, units_left_now: int | None) -> int:
    """After Redis lost a sale's keys: rebuild the replay records from PostgreSQL's orders,
    so a replay is still recognised without reaching the database; and the sale's holders
    (every shopper with a record), which a process reads before it answers "sold out" alone
    (apps/orders/services/sold_out.py): they are trusted again only once whole."""
    keys = sale_keys(sale_id)
    ttl = settings.IDEMPOTENCY_TTL_SECONDS
    orders = Order.objects.filter(sale_id=sale_id, created_at__gt=Now() - timedelta(seconds=ttl))
    pipe = get_redis().pipeline(transaction=False)
    count = 0
    for order in orders.only("id", "user_id", "quantity", "idempotency_key").iterator(
        chunk_size=2000
    ):
        record = replay_record_text(
            fingerprint=request_fingerprint(quantity=order.quantity),
            order_id=order.id,
            units_left_then=units_left_now,
        )
        pipe.set(keys.idempotency(order.user_id, order.idempotency_key), record, ex=ttl, nx=True)
        pipe.sadd(keys.holders, order.user_id)
        count += 1
        if count % 2000 == 0:
            pipe.execute()
    if count:
        pipe.expire(keys.holders, ttl)
    pipe.set(keys.holders_ready, "1")
    pipe.execute()
    return count


def idempotency_records_restore_on_rebuild(
    *, sale_id: object, units_left_now: int | None, **_
) -> None:
    """Receiver of inventory's ``inventory_rebuilt``: the sale's Redis keys were rebuilt."""
    idempotency_records_restore(sale_id=sale_id, units_left_now=units_left_now)
