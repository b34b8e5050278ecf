"""The order state machine, in one place. Every move is a conditional UPDATE, so two workers
can never both move one order; leaving a holding status frees the units in the same
transaction and gives them back to Redis after commit."""

from __future__ import annotations

from django.db import connection, transaction

from apps.core.errors import Conflict
from apps.inventory.services import units_return

from ..models import HOLDING_STATUSES, OrderStatus

S = OrderStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.RESERVED: frozenset({S.PAID, S.EXPIRED, S.CANCELLED}),
    S.PAID: frozenset({S.FULFILLED, S.REFUNDED, S.CANCELLED}),
    S.FULFILLED: frozenset({S.REFUNDED}),  # refunded or disputed at the gateway
    S.EXPIRED: frozenset({S.REFUNDED}),  # a charge that lands after expiry is refunded
    S.CANCELLED: frozenset({S.REFUNDED}),  # likewise after a decline-then-late-success
    S.REFUNDED: frozenset(),
}
_TIMESTAMP = {
    S.PAID: "paid_at",
    S.FULFILLED: "fulfilled_at",
    S.EXPIRED: "expired_at",
    S.CANCELLED: "cancelled_at",
    S.REFUNDED: "refunded_at",
}
# Money given back on a kept order (an operator's refund, or a refund or dispute at the
# gateway): its units stay with the order, out of the pool, so a unit that may be on its way
# to the shopper is never silently sold again. The audit counts them as withheld.
_WITHHOLDS_UNITS = {(S.PAID, S.REFUNDED), (S.FULFILLED, S.REFUNDED)}


class IllegalTransition(Conflict):
    code = "illegal_transition"


class TransitionLost(Conflict):
    """The order was not in the expected status any more: someone else moved it first."""

    code = "order_status_changed"


def order_transition(
    *,
    order_id: object,
    from_status: str,
    to_status: str,
    reason: str = "",
    extra_condition: str = "",
) -> None:
    """Move one order from ``from_status`` to ``to_status`` or raise.

    ``extra_condition`` is an SQL condition on the order row that must also hold (for
    instance that the reservation has expired by the database's clock).
    """
    if to_status not in TRANSITIONS.get(from_status, ()):
        raise IllegalTransition(f"An order cannot go from {from_status} to {to_status}.")
    stamp = _TIMESTAMP[to_status]
    releases = (
        from_status in HOLDING_STATUSES
        and to_status not in HOLDING_STATUSES
        and (from_status, to_status) not in _WITHHOLDS_UNITS
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE orders_order SET status = %s, {stamp} = now(), updated_at = now(), "
            "status_reason = CASE WHEN %s = '' THEN status_reason ELSE %s END "
            "WHERE id = %s AND status = %s "
            + (f"AND ({extra_condition}) " if extra_condition else "")
            + "RETURNING sale_id, user_id, quantity",
            [to_status, reason, reason, order_id, from_status],
        )
        row = cursor.fetchone()
        if row is None:
            raise TransitionLost(f"Order {order_id} is no longer {from_status}.")
        if releases:
            sale_id, user_id, quantity = row
            units = units_free_for_order(
                cursor, order_id=order_id, sale_id=sale_id, user_id=user_id, quantity=quantity
            )
            transaction.on_commit(
                lambda: units_return(
                    sale_id=sale_id,
                    order_id=order_id,
                    user_id=user_id,
                    quantity=quantity,
                    units=units,
                )
            )


def units_free_for_order(cursor, *, order_id, sale_id, user_id, quantity) -> list[int]:
    cursor.execute(
        "UPDATE inventory_unit SET order_id = NULL WHERE order_id = %s RETURNING number",
        [order_id],
    )
    units = [r[0] for r in cursor.fetchall()]
    cursor.execute(
        "UPDATE inventory_salebuyer SET units_held = GREATEST(units_held - %s, 0) "
        "WHERE sale_id = %s AND user_id = %s",
        [quantity, sale_id, user_id],
    )
    return units
