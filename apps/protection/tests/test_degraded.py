"""Redis lost mid-sale: purchases go on through PostgreSQL's guard with no oversell, and the
fast path resumes only after the counters were rebuilt. Redis is cut through a TCP proxy
this test owns; the shared server is never touched."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.test import Client

from apps.core.redis import get_redis
from apps.inventory.keys import sale_keys
from apps.inventory.models import Unit
from apps.orders.models import DegradedSale, Order
from apps.orders.services import degraded

from .conftest import purchase_auth


@pytest.fixture
def redis_behind_proxy(settings, tcp_proxy):
    proxy = tcp_proxy("127.0.0.1", 6379)
    settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/13"
    get_redis.cache_clear()
    degraded._resync_needed = False
    yield proxy
    proxy.restore()
    get_redis.cache_clear()
    degraded._resync_needed = False


def buy(client, sale, user, key=None):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        {},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
        **purchase_auth(user, sale),
    )


@pytest.mark.django_db
def test_redis_cut_mid_sale_degrades_then_fast_path_resumes_after_rebuild(
    client, make_sale, make_shopper, redis_behind_proxy, settings
):
    settings.RATELIMIT_ENABLE = False
    sale = make_sale(inventory=30, max_per_user=1)
    for _ in range(10):
        response = buy(client, sale, make_shopper())
        assert response.status_code == 201, response.content
        assert "degraded" not in response.json()

    redis_behind_proxy.cut()
    degraded_buyer = make_shopper()
    first = buy(client, sale, degraded_buyer, key="same-key")
    assert first.status_code == 201, first.content
    assert first.json()["degraded"] is True
    replay = buy(client, sale, degraded_buyer, key="same-key")
    assert replay.status_code == 200 and replay.json()["order_id"] == first.json()["order_id"]
    again = buy(client, sale, degraded_buyer, key="another-key")
    assert again.status_code == 409, again.content
    for _ in range(9):
        response = buy(client, sale, make_shopper())
        assert response.status_code == 201 and response.json()["degraded"] is True
    assert DegradedSale.objects.filter(sale_id=sale.id).exists()
    # The sale's data still reads (last known values) with Redis away.
    assert client.get(f"/api/v1/flash_sales/{sale.id}").status_code == 200

    # Redis answers again with its stale pool (20 units it believes free, 10 of them sold):
    # the counters are rebuilt from PostgreSQL before any fast-path purchase.
    redis_behind_proxy.restore()
    for _ in range(10):
        response = buy(client, sale, make_shopper())
        assert response.status_code == 201, response.content
        assert "degraded" not in response.json()
    assert not DegradedSale.objects.exists()
    late = buy(client, sale, make_shopper())
    assert late.status_code == 410 and late.json()["error"] == "sold_out"

    taken = list(
        Unit.objects.filter(sale=sale, order__isnull=False).values_list("order_id", flat=True)
    )
    assert len(taken) == 30 and len(set(taken)) == 30
    assert Order.objects.filter(sale=sale).holding().count() == 30
    assert get_redis().scard(sale_keys(sale.id).free) == 0
    # A replay of the degraded order after Redis returned still finds it.
    replay = buy(client, sale, degraded_buyer, key="same-key")
    assert replay.status_code == 200 and replay.json()["order_id"] == first.json()["order_id"]


@pytest.mark.django_db(transaction=True)
def test_degraded_purchases_in_parallel_never_oversell(
    make_sale, make_shopper, redis_behind_proxy, settings
):
    """40 shoppers in 8 threads race for 12 units with Redis gone: exactly 12 orders, every
    unit once; past the degraded concurrency cap a shopper gets 503 and retries."""
    settings.RATELIMIT_ENABLE = False
    settings.DEGRADED_PURCHASE_CONCURRENCY = 3
    sale = make_sale(inventory=12, max_per_user=1)
    shoppers = [make_shopper() for _ in range(40)]
    redis_behind_proxy.cut()
    outcomes: list[int] = []
    busy: list[int] = []
    lock = threading.Lock()

    def run(batch):
        from django.db import connection

        client = Client()
        try:
            _buy_all(client, batch)
        finally:
            connection.close()

    def _buy_all(client, batch):
        for user in batch:
            key = uuid.uuid4().hex
            for _attempt in range(50):
                response = buy(client, sale, user, key=key)
                if response.status_code != 503:
                    break
                with lock:
                    busy.append(1)
            with lock:
                outcomes.append(response.status_code)

    threads = [threading.Thread(target=run, args=(shoppers[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert busy, "the degraded concurrency cap never answered 503"
    assert outcomes.count(201) == 12, outcomes
    assert set(outcomes) <= {201, 410}
    taken = list(
        Unit.objects.filter(sale=sale, order__isnull=False).values_list("order_id", flat=True)
    )
    assert len(taken) == 12 and len(set(taken)) == 12
    assert Order.objects.filter(sale=sale).count() == 12


class OwnRedis:
    """A redis-server of the test's own on a fixed port, that can be killed and started
    again (empty) on the same port."""

    def __init__(self):
        import tempfile

        from apps.core.testing.ports import free_port

        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="fs-prot-redis-")
        self.process = None
        self.start()

    def start(self) -> None:
        from apps.core.testing.redis_server import redis_server_start

        self.process = redis_server_start(port=self.port, workdir=self.workdir)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def own_redis_server(settings):
    import shutil

    server = OwnRedis()
    settings.REDIS_URL = f"redis://127.0.0.1:{server.port}/0"
    get_redis.cache_clear()
    degraded._resync_needed = False
    yield server
    server.kill()
    shutil.rmtree(server.workdir, ignore_errors=True)
    get_redis.cache_clear()
    degraded._resync_needed = False


@pytest.mark.django_db
def test_redis_killed_mid_sale_and_restarted_empty(
    client, make_sale, make_shopper, own_redis_server, settings
):
    """Redis SIGKILLed mid-sale: degraded purchases; it comes back empty: the pool is rebuilt
    from PostgreSQL and the fast path sells exactly the units left."""
    settings.RATELIMIT_ENABLE = False
    sale = make_sale(inventory=12, max_per_user=1)
    for _ in range(4):
        assert buy(client, sale, make_shopper()).status_code == 201
    own_redis_server.kill()
    for _ in range(4):
        response = buy(client, sale, make_shopper())
        assert response.status_code == 201 and response.json()["degraded"] is True
    own_redis_server.start()
    codes = [buy(client, sale, make_shopper()).status_code for _ in range(6)]
    assert codes == [201, 201, 201, 201, 410, 410], codes
    taken = list(
        Unit.objects.filter(sale=sale, order__isnull=False).values_list("order_id", flat=True)
    )
    assert len(taken) == 12 and len(set(taken)) == 12
    assert get_redis().scard(sale_keys(sale.id).free) == 0
    assert not DegradedSale.objects.exists()
