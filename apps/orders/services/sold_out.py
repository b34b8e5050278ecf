"""A sold-out sale refuses a purchase in the process alone: no Redis, no PostgreSQL.

The one purchase that must not be refused is a replay: a retried success gets its order. Only
a shopper who took a hold can have one, so the process remembers, with the sale, who those
shoppers are (sold_out_snapshot.lua, one round trip when it learns the sale sold out and the
holders themselves only when their count changed). Everyone else is refused at once; a holder
goes on to reserve.lua, which replays, or refuses.

Why the memory cannot lie: while the pool is empty nobody takes a hold, so nobody joins the
holders; units that come back to an empty pool are sold only after a restock delay longer
than any process remembers (reserve.lua, ``restock_delay_ms``). The memory's lifetime is
counted from before the question was sent, so it ends before Redis's own answer expires.
After a rebuild the holders are trusted again only once restored from PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from apps.core.memory import ProcessMemory
from apps.core.redis import RedisError
from apps.inventory import redis_scripts
from apps.inventory.keys import sale_keys

_sold_out = ProcessMemory("sold_out_sales", seconds="SOLD_OUT_MEMORY_SECONDS")
_holders_last: dict[str, frozenset[int]] = {}  # the last holders seen per sale, to reuse
_asking = threading.Lock()  # one question at a time per process; the others go on as before


@dataclass(frozen=True)
class SoldOutMemory:
    holders: frozenset[int]


def sale_remember_sold_out(sale_id: str) -> None:
    """reserve.lua just said the sale's pool is empty: ask what may be remembered and for
    how long (one round trip), unless another thread of this process is asking."""
    period = _sold_out.period()
    if period <= 0 or not _asking.acquire(blocking=False):
        return
    try:
        asked = time.monotonic()
        known = _holders_last.get(sale_id)
        try:
            snapshot = redis_scripts.sold_out_snapshot(
                sale_keys(sale_id),
                memory_ms=int(period * 1000),
                holders_known=-1 if known is None else len(known),
            )
        except RedisError:
            return
        if snapshot.state != "SOLD_OUT":
            return
        holders = known if snapshot.holders is None else snapshot.holders
        if len(_holders_last) > 1000:
            _holders_last.clear()
        _holders_last[sale_id] = holders
        seconds = snapshot.valid_ms / 1000 - (time.monotonic() - asked)
        if seconds > 0:
            _sold_out.set(sale_id, SoldOutMemory(holders), seconds=seconds)
    finally:
        _asking.release()


def sale_known_sold_out(sale_id: str) -> bool:
    return _sold_out.get(sale_id) is not None


def sold_out_refuses(sale_id: str, user_id: int) -> bool:
    """True when this process knows the sale sold out and the shopper took no hold in it:
    the purchase is refused without asking anyone."""
    known = _sold_out.get(sale_id)
    return known is not None and user_id not in known.holders
