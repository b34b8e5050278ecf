"""Shared fixtures: real PostgreSQL (pytest-django's test database) and real Redis (a
database index and key prefix of this run's own; see flashsale/settings/test.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from apps.core.memory import memories_reset
from apps.core.redis import get_redis
from apps.core.testing.ports import free_port
from apps.core.tokens import shopper_token_issue


def _delete_prefixed_keys() -> None:
    redis = get_redis()
    batch = []
    for name in redis.scan_iter(match=settings.REDIS_KEY_PREFIX + "*", count=1000):
        batch.append(name)
        if len(batch) >= 1000:
            redis.delete(*batch)
            batch.clear()
    if batch:
        redis.delete(*batch)


@pytest.fixture(scope="session")
def django_db_modify_db_settings_xdist_suffix():
    """The test settings already name the database after the xdist worker (gw0, gw1 ...), so
    that the processes a test starts find it too: pytest-django must not add a second suffix."""


@pytest.fixture(autouse=True)
def _redis_clean():
    """Every test starts with nothing remembered by this process and ends with none of this
    run's keys in Redis."""
    _delete_prefixed_keys()
    memories_reset()
    yield
    _delete_prefixed_keys()


@pytest.fixture
def redis_client():
    return get_redis()


@pytest.fixture
def redis_round_trips(monkeypatch):
    """Every command this process sends Redis from now on (one entry per round trip: a
    pipeline or a script call is one), for tests that count them; ``clear()`` it before the
    part that is counted."""
    import redis.connection

    sent = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self, *args, **kwargs):
        sent.append(args)
        return send(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    return sent


@pytest.fixture
def make_shopper(django_user_model):
    from apps.accounts.tests.factories import ShopperFactory

    def make(username: str | None = None, password: str = "pw-for-tests"):
        return ShopperFactory(password=password, **({"username": username} if username else {}))

    return make


@pytest.fixture
def shopper(make_shopper):
    return make_shopper()


def bearer(user) -> dict:
    token, _ = shopper_token_issue(user_id=user.id, username=user.username)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def make_sale():
    """A sale created through the real service (unit rows, Redis pool, snapshot)."""
    from apps.sales.tests.factories import SaleFactory

    def make(
        *,
        inventory: int = 10,
        starts_in: timedelta = timedelta(seconds=-1),
        duration: timedelta = timedelta(hours=1),
        max_per_user: int = 1,
        price: str = "10.00",
        **options,
    ):
        start = timezone.now() + starts_in
        return SaleFactory(
            price=Decimal(price),
            total_inventory=inventory,
            start_time=start,
            end_time=start + duration,
            max_per_user=max_per_user,
            **options,
        )

    return make


@pytest.fixture
def private_redis(settings):
    """A redis-server of this test's own on a free port, so the test may FLUSHDB or kill it
    without touching the machine's shared Redis."""
    import shutil
    import tempfile

    import redis as redis_lib

    from apps.core.testing.redis_server import redis_server_start

    port = free_port()
    workdir = tempfile.mkdtemp(prefix="fs-redis-")
    process = redis_server_start(port=port, workdir=workdir)
    client = redis_lib.Redis(port=port)
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    get_redis.cache_clear()
    try:
        yield client
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        get_redis.cache_clear()


def admitted(user, sale, *, lifetime_seconds: int = 120) -> dict:
    """Headers for a purchase by ``user`` with a valid admission to ``sale`` (as if the
    waiting room had just admitted them)."""
    from apps.waiting_room.tokens import admission_token_issue

    token, _ = admission_token_issue(
        user_id=user.id, sale_id=str(sale.id), lifetime_seconds=lifetime_seconds
    )
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
