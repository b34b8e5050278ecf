"""Reads of sale data. The hot path reads a snapshot from process memory, then Redis, and
PostgreSQL only when neither has it, so refused requests never reach the database."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.core.db_router import stale_reads
from apps.core.memory import ProcessMemory
from apps.core.redis import RedisError, get_redis, key, sale_key

from .models import FlashSale, SaleStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SaleSnapshot:
    """What the purchase path needs to know about a sale, cheap to cache."""

    id: str
    product_id: str
    product_name: str
    title: str
    price: str
    currency: str
    total_inventory: int
    starts_ms: int
    ends_ms: int
    max_per_user: int
    reservation_seconds: int
    status: str
    pre_queue_minutes: int
    admission_rate: int
    admission_token_seconds: int
    # For the pages (defaults keep snapshots cached by an older release readable).
    description: str = ""
    image_url: str = ""
    list_price: str | None = None
    max_active_shoppers: int = 0  # 0 in snapshots cached before it was added: no floor

    @property
    def is_open_for_orders(self) -> bool:
        return self.status in (SaleStatus.SCHEDULED, SaleStatus.ACTIVE)

    @property
    def unit_price(self) -> Decimal:
        return Decimal(self.price)

    @property
    def starts_at(self) -> datetime:
        return datetime.fromtimestamp(self.starts_ms / 1000, tz=UTC)

    @property
    def ends_at(self) -> datetime:
        return datetime.fromtimestamp(self.ends_ms / 1000, tz=UTC)

    # The model's names, so sale_phase() and templates take a snapshot like a FlashSale.
    @property
    def start_time(self) -> datetime:
        return self.starts_at

    @property
    def end_time(self) -> datetime:
        return self.ends_at

    @property
    def queue_opens_ms(self) -> int:
        return self.starts_ms - self.pre_queue_minutes * 60_000


def _epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def snapshot_from_sale(sale: FlashSale) -> SaleSnapshot:
    return SaleSnapshot(
        id=str(sale.id),
        product_id=str(sale.product_id),
        product_name=sale.product.name,
        title=str(sale),
        price=str(sale.price),
        currency=sale.currency,
        total_inventory=sale.total_inventory,
        starts_ms=_epoch_ms(sale.start_time),
        ends_ms=_epoch_ms(sale.end_time),
        max_per_user=sale.max_per_user,
        reservation_seconds=sale.reservation_seconds,
        status=sale.status,
        pre_queue_minutes=sale.pre_queue_minutes,
        admission_rate=sale.admission_rate,
        admission_token_seconds=sale.admission_token_seconds,
        max_active_shoppers=sale.max_active_shoppers,
        description=sale.product.description,
        image_url=sale.product.image_url,
        list_price=None if sale.product.list_price is None else str(sale.product.list_price),
    )


# The sale cache, in three layers so that the start second cannot stampede PostgreSQL:
# 1. process memory for SALE_SNAPSHOT_SECONDS, filled by one thread per process at a time
#    (the others wait for that thread and take its result);
# 2. Redis, written when a sale is saved/started/ended and re-warmed by a beat task before the
#    start; an entry older than SALE_CACHE_FRESH_SECONDS is refreshed by the one request that
#    wins a short Redis lock while everybody else keeps serving the entry they have;
# 3. PostgreSQL, read only by that lock's winner (or, when the entry is missing entirely, by
#    the winner while the others poll Redis for its result for up to SALE_CACHE_WAIT_SECONDS).
_MEMORY_MAX_SALES = 10_000
_memory = ProcessMemory(
    "sale_snapshots", seconds="SALE_SNAPSHOT_SECONDS", maxsize=_MEMORY_MAX_SALES
)
_MISSING_SECONDS = 5
_REFRESH_LOCK_SECONDS = 3.0
_ABSENT = object()


class _Flight:
    """One read of a sale's snapshot at a time per process; the threads that waited for it
    take its result."""

    def __init__(self):
        self.lock = threading.Lock()
        self.fetched_at = float("-inf")
        self.snapshot: SaleSnapshot | None = None


_flights: dict[str, _Flight] = {}
_flights_guard = threading.Lock()


def sale_snapshot_forget(sale_id: object) -> None:
    _memory.forget(str(sale_id))
    flight = _flights.get(str(sale_id))
    if flight is not None:
        flight.fetched_at = float("-inf")


def sale_snapshot_key(sale_id: object) -> str:
    """Where a sale's snapshot lives in Redis (beside the sale's other keys, same hash tag)."""
    return sale_key(sale_id, "meta")


def _refresh_lock_key(sale_id: str) -> str:
    return sale_snapshot_key(sale_id) + ":refresh-lock"


def _upcoming_key() -> str:
    return key("sales", "upcoming")


def _snapshot_encode(snapshot: SaleSnapshot | None) -> str:
    body = asdict(snapshot) if snapshot else {"missing": True}
    body["cached_at_ms"] = int(time.time() * 1000)
    return json.dumps(body)


def _snapshot_decode(raw: bytes | str) -> tuple[SaleSnapshot | None, int]:
    body = json.loads(raw)
    cached_at_ms = int(body.pop("cached_at_ms", 0))
    if body.get("missing"):
        return None, cached_at_ms
    known = SaleSnapshot.__dataclass_fields__
    return SaleSnapshot(**{k: v for k, v in body.items() if k in known}), cached_at_ms


def sale_snapshot_store(snapshot: SaleSnapshot) -> None:
    """Publish the snapshot to Redis for every process (called when a sale is saved)."""
    redis = get_redis()
    pipe = redis.pipeline(transaction=False)
    pipe.set(
        sale_snapshot_key(snapshot.id),
        _snapshot_encode(snapshot),
        ex=settings.SALE_CACHE_TTL_SECONDS,
    )
    pipe.delete(_upcoming_key())
    pipe.execute()
    sale_snapshot_forget(snapshot.id)


def _snapshot_from_database(sale_id: str) -> SaleSnapshot | None:
    sale = FlashSale.objects.select_related("product").filter(id=sale_id).first()
    return snapshot_from_sale(sale) if sale else None


def _snapshot_load_and_store(sale_id: str) -> SaleSnapshot | None:
    snapshot = _snapshot_from_database(sale_id)
    with contextlib.suppress(RedisError):
        if snapshot is None:
            get_redis().set(sale_snapshot_key(sale_id), _snapshot_encode(None), ex=_MISSING_SECONDS)
        else:
            sale_snapshot_store(snapshot)
    return snapshot


def _snapshot_refresh(sale_id: str, *, stale_before_ms: float | None) -> SaleSnapshot | None:
    """Under the lock: someone may have refreshed the entry between our read and our lock,
    so look again before asking PostgreSQL."""
    raw = get_redis().get(sale_snapshot_key(sale_id))
    if raw:
        snapshot, cached_at_ms = _snapshot_decode(raw)
        if stale_before_ms is None or cached_at_ms >= stale_before_ms:
            return snapshot
    return _snapshot_load_and_store(sale_id)


def _with_refresh_lock(lock_key: str, load: Callable[[], object]) -> tuple[bool, object]:
    """Run ``load`` if this request wins the refresh lock (not waited for); (won, result)."""
    lock = get_redis().lock(lock_key, timeout=_REFRESH_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        return False, None
    try:
        return True, load()
    finally:
        with contextlib.suppress(RedisError):  # expired (LockNotOwnedError) or Redis away
            lock.release()


def _snapshot_shared(sale_id: str) -> SaleSnapshot | None:
    """Layers 2 and 3: Redis, and PostgreSQL by one request at a time."""
    redis = get_redis()
    try:
        raw = redis.get(sale_snapshot_key(sale_id))
    except RedisError:
        # Redis is down: each process still asks PostgreSQL at most once per memory period.
        return _snapshot_from_database(sale_id)
    if raw:
        snapshot, cached_at_ms = _snapshot_decode(raw)
        age_ms = time.time() * 1000 - cached_at_ms
        if snapshot is not None and age_ms > settings.SALE_CACHE_FRESH_SECONDS * 1000:
            with contextlib.suppress(RedisError):
                stale_before_ms = time.time() * 1000 - settings.SALE_CACHE_FRESH_SECONDS * 1000
                won, fresh = _with_refresh_lock(
                    _refresh_lock_key(sale_id),
                    lambda: _snapshot_refresh(sale_id, stale_before_ms=stale_before_ms),
                )
                if won:
                    return fresh
        return snapshot
    deadline = time.monotonic() + settings.SALE_CACHE_WAIT_SECONDS
    while True:
        try:
            won, snapshot = _with_refresh_lock(
                _refresh_lock_key(sale_id), lambda: _snapshot_refresh(sale_id, stale_before_ms=None)
            )
            if won:
                return snapshot
            time.sleep(0.01 + random.random() * 0.02)
            raw = redis.get(sale_snapshot_key(sale_id))
        except RedisError:
            return _snapshot_from_database(sale_id)
        if raw:
            return _snapshot_decode(raw)[0]
        if time.monotonic() > deadline:
            logger.warning("sale cache for %s not filled in time; reading PostgreSQL", sale_id)
            return _snapshot_from_database(sale_id)


def _flight(sale_id: str) -> _Flight:
    flight = _flights.get(sale_id)
    if flight is None:
        with _flights_guard:
            if len(_flights) > _MEMORY_MAX_SALES:
                # Made-up sale ids must not grow the process without bound; a flight still in
                # use stays alive with the threads holding it.
                _flights.clear()
            flight = _flights.setdefault(sale_id, _Flight())
    return flight


def sale_snapshot(sale_id: str) -> SaleSnapshot | None:
    """The sale's snapshot, or None when no such sale exists."""
    try:
        sale_id = str(uuid.UUID(str(sale_id)))
    except ValueError:
        return None
    asked_at = time.monotonic()
    cached = _memory.get(sale_id, _ABSENT)
    if cached is not _ABSENT:
        return cached
    flight = _flight(sale_id)
    with flight.lock:
        # Another thread of this process may have fetched it while this one waited.
        cached = _memory.get(sale_id, _ABSENT)
        if cached is not _ABSENT:
            return cached
        if flight.fetched_at >= asked_at:
            return flight.snapshot
        snapshot = _snapshot_shared(sale_id)
        flight.fetched_at, flight.snapshot = time.monotonic(), snapshot
        _memory.set(sale_id, snapshot, seconds=None if snapshot else _MISSING_SECONDS)
        return snapshot


def sale_ids_upcoming_or_live() -> list[str]:
    """Ids of upcoming and live sales, soonest first, through the same stampede-proof cache
    (a list of ids; each sale's data comes from its own snapshot)."""
    redis = get_redis()
    try:
        raw = redis.get(_upcoming_key())
    except RedisError:
        raw = None
    if raw:
        return json.loads(raw)

    def load() -> list[str]:
        with stale_reads():  # a list that lags a moment is fine; each sale's snapshot is not
            ids = [str(i) for i in sales_upcoming_or_live().values_list("id", flat=True)[:100]]
        with contextlib.suppress(RedisError):
            redis.set(_upcoming_key(), json.dumps(ids), ex=settings.SALE_LIST_CACHE_SECONDS)
        return ids

    deadline = time.monotonic() + settings.SALE_CACHE_WAIT_SECONDS
    while True:
        try:
            won, ids = _with_refresh_lock(_upcoming_key() + ":refresh-lock", load)
            if won:
                return ids
            time.sleep(0.01 + random.random() * 0.02)
            raw = redis.get(_upcoming_key())
        except RedisError:
            raw = None
            deadline = 0
        if raw:
            return json.loads(raw)
        if time.monotonic() > deadline:
            return load()


def sale_snapshots_upcoming_or_live() -> list[SaleSnapshot]:
    now_ms = time.time() * 1000
    snapshots = [sale_snapshot(sale_id) for sale_id in sale_ids_upcoming_or_live()]
    return [s for s in snapshots if s is not None and s.is_open_for_orders and s.ends_ms > now_ms]


def sales_cache_warm(*, within_seconds: int = 3600) -> int:
    """Re-publish every sale starting within ``within_seconds`` (or live), so the start second
    finds the cache full. Returns how many were warmed."""
    sales = sales_upcoming_or_live().filter(
        start_time__lte=timezone.now() + timedelta(seconds=within_seconds)
    )
    warmed = 0
    for sale in sales:
        with contextlib.suppress(RedisError):
            sale_snapshot_store(snapshot_from_sale(sale))
            warmed += 1
    with contextlib.suppress(RedisError):
        sale_ids_upcoming_or_live()
    return warmed


def sales_upcoming_or_live() -> QuerySet[FlashSale]:
    return FlashSale.objects.upcoming_or_live().select_related("product")


def sales_with_unit_counts(queryset: QuerySet[FlashSale] | None = None) -> QuerySet[FlashSale]:
    """Sales annotated with units sold (paid/fulfilled), reserved and free, from PostgreSQL."""
    queryset = queryset if queryset is not None else FlashSale.objects.all()
    return queryset.annotate(
        units_sold=Count("units", filter=Q(units__order__status__in=["PAID", "FULFILLED"])),
        units_reserved=Count("units", filter=Q(units__order__status="RESERVED")),
        units_free=Count("units", filter=Q(units__order__isnull=True)),
    )


def sale_units_held(*, sale_id: object) -> int:
    """Units of the sale that orders hold (reserved, paid or fulfilled), from PostgreSQL."""
    return FlashSale.objects.filter(id=sale_id).aggregate(
        held=Count("units", filter=Q(units__order__isnull=False))
    )["held"]


def sale_get(*, sale_id: object) -> FlashSale | None:
    try:
        uuid.UUID(str(sale_id))
    except ValueError:
        return None
    return FlashSale.objects.select_related("product").filter(id=sale_id).first()
