"""Bench-only views, mounted only by the bench's URLconf (scripts/bench_lib/urls.py).

* ``bench_bare``: a JSON answer behind the same server, middleware and URL resolver as the
  API: the ceiling of our stack.
* ``bench_bare_redis``: ``bench_bare`` plus the one Redis round trip every refusal makes (the
  rate limits' sliding-window script, through the same call path), nothing else: the floor
  of a refusal that asks Redis once.
* ``bench_rowlock_purchase``: the brief's rejected alternative as a baseline: the same
  purchase (bearer token, idempotency key, order row, unit rows, per-shopper tally) done in
  PostgreSQL alone: ``SELECT … FOR UPDATE`` on the sale row, then the order insert. No Redis.
"""

from __future__ import annotations

import itertools
import uuid

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.views.decorators.csrf import csrf_exempt

from apps.core.authentication import request_shopper
from apps.core.errors import ApplicationError, NotFound
from apps.core.http import error_response, json_response
from apps.core.parsers import request_json_object
from apps.orders.apis import idempotency_key_from, purchase_input
from apps.orders.models import OrderStatus
from apps.orders.services.reservations import AlreadyReserved, SoldOut, reservation_body
from apps.protection.ratelimits import Window, sliding_windows_hit
from apps.sales.selectors import sale_snapshot


def bench_bare(request):
    return json_response({"ok": True})


# Small logs like a shopper's window: 10,000 keys in turn, a limit never reached.
_windows = itertools.count()


def bench_bare_redis(request):
    key = f"{settings.REDIS_KEY_PREFIX}rl:bench:user:{next(_windows) % 10_000}"
    sliding_windows_hit([Window(key, 1_000_000, 1)])
    return json_response({"ok": True})


_LOCK_SQL = "SELECT id FROM sales_flashsale WHERE id = %s FOR UPDATE"

# With the sale row locked, every purchase of the sale is serialised: the units can be
# picked without further locking. Same writes as the Redis path's _RESERVE_SQL.
_ROWLOCK_SQL = """
WITH picked AS (
    SELECT id FROM inventory_unit
    WHERE sale_id = %(sale_id)s AND order_id IS NULL
    ORDER BY number LIMIT %(quantity)s
), new_order AS (
    INSERT INTO orders_order (id, user_id, sale_id, quantity, amount, currency, status,
        idempotency_key, reserved_at, reserved_until, status_reason, created_at, updated_at)
    SELECT %(order_id)s, %(user_id)s, %(sale_id)s, %(quantity)s, %(amount)s, %(currency)s,
        'RESERVED', %(key)s, now(), now() + make_interval(secs => %(window)s), '', now(), now()
    WHERE (SELECT count(*) FROM picked) = %(quantity)s
    RETURNING reserved_until
), taken AS (
    UPDATE inventory_unit SET order_id = %(order_id)s
    WHERE id IN (SELECT id FROM picked) AND EXISTS (SELECT 1 FROM new_order)
    RETURNING 1
), tally AS (
    INSERT INTO inventory_salebuyer (sale_id, user_id, units_held, max_units)
    SELECT %(sale_id)s, %(user_id)s, %(quantity)s, %(max)s WHERE EXISTS (SELECT 1 FROM new_order)
    ON CONFLICT (sale_id, user_id) DO UPDATE
        SET units_held = inventory_salebuyer.units_held + EXCLUDED.units_held
        WHERE inventory_salebuyer.units_held + EXCLUDED.units_held <= EXCLUDED.max_units
    RETURNING 1
)
SELECT (SELECT reserved_until FROM new_order), (SELECT count(*) FROM taken),
       (SELECT count(*) FROM tally)
"""


class _Rollback(Exception):
    def __init__(self, error: ApplicationError):
        self.error = error


@csrf_exempt
def bench_rowlock_purchase(request, sale_id):
    try:
        if request.method != "POST":
            raise ApplicationError("Use POST.", code="method_not_allowed", status=405)
        shopper = request_shopper(request)
        idempotency_key = idempotency_key_from(request)
        quantity, _product_id = purchase_input(request_json_object(request))
        sale = sale_snapshot(str(sale_id))
        if sale is None:
            raise NotFound("No such sale.", code="sale_not_found")
        if quantity > sale.max_per_user:
            raise AlreadyReserved(f"At most {sale.max_per_user} unit(s) per shopper.")
        order_id = str(uuid.uuid4())
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_LOCK_SQL, [sale.id])
                cursor.execute(
                    _ROWLOCK_SQL,
                    {
                        "order_id": order_id,
                        "user_id": shopper.id,
                        "sale_id": sale.id,
                        "quantity": quantity,
                        "amount": sale.unit_price * quantity,
                        "currency": sale.currency,
                        "key": idempotency_key,
                        "window": sale.reservation_seconds,
                        "max": sale.max_per_user,
                    },
                )
                reserved_until, taken, tally = cursor.fetchone()
                if reserved_until is None or taken != quantity:
                    raise _Rollback(SoldOut("Sold out: every unit is taken."))
                if tally != 1:
                    raise _Rollback(AlreadyReserved("You already hold the most units allowed."))
        except _Rollback as rollback:
            raise rollback.error from None
        except IntegrityError:
            raise ApplicationError(
                "This X-Idempotency-Key was already used.", code="replay", status=409
            ) from None
    except ApplicationError as error:
        return error_response(error)
    body = reservation_body(
        order_id=order_id,
        status=OrderStatus.RESERVED,
        reserved_until=reserved_until,
        units_left=None,
    )
    return json_response(body, status=201)
