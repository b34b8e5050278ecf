"""What a reservation is, shared by the fast path (purchase) and the degraded path: the
reply body, the refusals, the one statement that inserts an order holding its units, and
the replay records rebuilt from PostgreSQL after Redis lost a sale's keys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Now

from apps.core.errors import Conflict, Gone, Unprocessable
from apps.core.redis import get_redis
from apps.core.times import isoformat_z
from apps.inventory.keys import sale_keys
from apps.inventory.services import units_left
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


def request_fingerprint(*, quantity: int) -> str:
    """What makes two purchase bodies "the same": the quantity (a product_id, when sent,
    must be the sale's own, so it adds nothing). PostgreSQL can rebuild it from an order."""
    return hashlib.sha256(f"q{quantity}".encode()).hexdigest()[:16]


def payment_url(order_id: object) -> str:
    return f"{settings.SITE_URL}/orders/{order_id}/pay/"


def order_url(order_id: object) -> str:
    return f"{settings.SITE_URL}/orders/{order_id}/"


_RESERVE_SQL = """
WITH new_order AS (
    INSERT INTO orders_order (id, user_id, sale_id, quantity, amount, currency, status,
        idempotency_key, reserved_at, reserved_until, status_reason, created_at, updated_at)
    VALUES (%(order_id)s, %(user_id)s, %(sale_id)s, %(quantity)s, %(amount)s, %(currency)s,
        'RESERVED', %(key)s, now(), now() + make_interval(secs => %(window)s), '', now(), now())
    RETURNING reserved_until
), taken AS (
    UPDATE inventory_unit SET order_id = %(order_id)s
    WHERE sale_id = %(sale_id)s AND number = ANY(%(units)s) AND order_id IS NULL
    RETURNING 1
), tally AS (
    INSERT INTO inventory_salebuyer (sale_id, user_id, units_held, max_units)
    VALUES (%(sale_id)s, %(user_id)s, %(quantity)s, %(max)s)
    ON CONFLICT (sale_id, user_id) DO UPDATE
        SET units_held = inventory_salebuyer.units_held + EXCLUDED.units_held,
            max_units = EXCLUDED.max_units
        WHERE inventory_salebuyer.units_held + EXCLUDED.units_held <= EXCLUDED.max_units
    RETURNING 1
)
SELECT (SELECT reserved_until FROM new_order), (SELECT count(*) FROM taken),
       (SELECT count(*) FROM tally)
"""


def order_insert_holding_units(
    cursor,
    *,
    sale: SaleSnapshot,
    user_id: int,
    quantity: int,
    idempotency_key: str,
    order_id: str,
    units: list[int],
):
    """Insert the order, point exactly ``units`` at it (only those still free) and raise the
    shopper's tally within the limit, in one statement. Returns (reserved_until, units
    taken, tally rows raised); the caller rolls back unless they are (…, quantity, 1)."""
    cursor.execute(
        _RESERVE_SQL,
        {
            "order_id": order_id,
            "user_id": user_id,
            "sale_id": sale.id,
            "quantity": quantity,
            "amount": sale.unit_price * quantity,
            "currency": sale.currency,
            "key": idempotency_key,
            "window": sale.reservation_seconds,
            "units": units,
            "max": sale.max_per_user,
        },
    )
    return cursor.fetchone()


_UNKNOWN = object()


def _body_from_order(order: Order, units_left_now: object = _UNKNOWN) -> dict:
    """The purchase's reply for an existing order, as the order is now: ``payment_url``
    only while it can still be paid."""
    if units_left_now is _UNKNOWN:
        units_left_now = units_left(sale_id=order.sale_id)
    return {
        "order_id": str(order.id),
        "status": order.status.lower(),
        "reservation_expires_at": isoformat_z(order.reserved_until),
        "payment_url": payment_url(order.id) if order.status == OrderStatus.RESERVED else None,
        "order_url": order_url(order.id),
        "remaining_inventory": units_left_now,
    }


def idempotency_records_restore(*, sale_id: object, units_left_now: int | None) -> int:
    """After Redis lost a sale's keys: rebuild the replay records from PostgreSQL's orders,
    so a replay is still recognised without reaching the database."""
    keys = sale_keys(sale_id)
    ttl = settings.IDEMPOTENCY_TTL_SECONDS
    orders = Order.objects.filter(sale_id=sale_id, created_at__gt=Now() - timedelta(seconds=ttl))
    pipe = get_redis().pipeline(transaction=False)
    count = 0
    for order in orders.iterator(chunk_size=2000):
        record = (
            f"done|{request_fingerprint(quantity=order.quantity)}|"
            f"{json.dumps(_body_from_order(order, units_left_now))}"
        )
        pipe.set(keys.idempotency(order.user_id, order.idempotency_key), record, ex=ttl, nx=True)
        count += 1
        if count % 2000 == 0:
            pipe.execute()
    pipe.execute()
    return count


def idempotency_records_restore_on_rebuild(
    *, sale_id: object, units_left_now: int | None, **_
) -> None:
    """Receiver of inventory's ``inventory_rebuilt``: the sale's Redis keys were rebuilt."""
    idempotency_records_restore(sale_id=sale_id, units_left_now=units_left_now)
