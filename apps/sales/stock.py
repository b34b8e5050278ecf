"""A sale's stock: what sales tells inventory, and the one thing it asks.

The units are inventory's, the layer above. Sales announces what changed with two signals,
and asks how many units are left through one registered answer; inventory connects both in
``InventoryConfig.ready``. With nobody listening, sales fails closed: a sale has no unit rows
(so nothing can be sold) and the units left are unknown.
"""

from __future__ import annotations

from collections.abc import Callable

from django.dispatch import Signal

# Sent inside the transaction that set a sale's ``total_inventory`` (created, edited in the
# admin, or grown while live), with ``sale_id``, ``total_inventory`` and ``units_added`` (the
# unit numbers a live sale gained, else empty). A receiver's error rolls the change back.
sale_inventory_changed = Signal()

# Sent after a sale's snapshot was published (created, saved, started, cancelled, or moved
# along by the clock), with ``sale_id``: inventory pre-warms its Redis pool then.
sale_published = Signal()

UnitsLeft = Callable[..., "int | None"]
_units_left_answers: list[UnitsLeft] = []


def units_left_set(answer: UnitsLeft) -> None:
    """Register who answers ``units_left(sale_id=...)`` (inventory, from Redis)."""
    _units_left_answers[:] = [answer]


def units_left(*, sale_id: object) -> int | None:
    """Units free right now, or None when nobody knows (Redis away, or no answer plugged in)."""
    return _units_left_answers[0](sale_id=sale_id) if _units_left_answers else None
