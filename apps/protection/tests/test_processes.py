"""Against real server processes: rate limits shared by two processes, and PostgreSQL cut
(through a proxy the test owns) under a running server."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from apps.core.testing.waiting import wait_for
from apps.inventory.keys import sale_keys
from apps.inventory.models import SaleBuyer, Unit
from apps.orders.models import Order
from conftest import bearer

from .conftest import purchase_auth
from .servers import AppServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def servers():
    started: list[AppServer] = []

    def start(**env) -> AppServer:
        server = AppServer(env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_rate_limits_hold_across_two_app_processes(servers, make_sale, shopper):
    env = {"RATE_LIMITS_JSON": json.dumps({"challenge": {"user": "6/m", "ip": "1000/m"}})}
    first, second = servers(**env), servers(**env)
    sale = make_sale()
    headers = {"Authorization": bearer(shopper)["HTTP_AUTHORIZATION"]}
    statuses = []
    for i in range(10):
        server = (first, second)[i % 2]
        response = httpx.get(
            f"{server.url}/api/v1/flash_sales/{sale.id}/challenge", headers=headers
        )
        statuses.append(response.status_code)
    assert statuses.count(200) == 6, statuses
    assert statuses.count(429) == 4
    limited = httpx.get(f"{second.url}/api/v1/flash_sales/{sale.id}/challenge", headers=headers)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"] == "rate_limited"


def test_postgres_cut_fails_purchases_fast_with_nothing_half_written(
    servers, tcp_proxy, make_sale, make_shopper, redis_client, settings
):
    proxy = tcp_proxy("127.0.0.1", int(settings.DATABASES["default"]["PORT"] or 5432))
    db = settings.DATABASES["default"]
    server = servers(
        DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}",
        RATELIMIT_ENABLE="0",
    )
    sale = make_sale(inventory=5)
    free = sale_keys(sale.id).free

    def buy(user):
        started = time.perf_counter()
        response = httpx.post(
            f"{server.url}/api/v1/flash_sales/{sale.id}/purchase",
            json={},
            headers={
                "Authorization": purchase_auth(user, sale)["HTTP_AUTHORIZATION"],
                "X-Idempotency-Key": uuid.uuid4().hex,
            },
            timeout=30,
        )
        return response, time.perf_counter() - started

    response, _ = buy(make_shopper())
    assert response.status_code == 201, response.text
    assert redis_client.scard(free) == 4

    proxy.cut()
    victim = make_shopper()
    for _ in range(3):
        response, seconds = buy(victim)
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "database_unavailable"
        assert "Retry-After" in response.headers
        assert seconds < 2.0, seconds
    # Nothing half-written: no order, no unit, no tally, and Redis got its units back.
    assert not Order.objects.filter(user=victim).exists()
    assert not SaleBuyer.objects.filter(user=victim).exists()
    assert Unit.objects.filter(sale=sale, order__isnull=False).count() == 1
    assert redis_client.scard(free) == 4
    # The sale's data still answers from the cache.
    assert httpx.get(f"{server.url}/api/v1/flash_sales/{sale.id}").status_code == 200

    proxy.restore()
    # The pool reconnects in the background (with its backoff): a purchase in that moment is
    # told 503 + Retry-After like the ones above, and the shopper's retry buys.
    deadline = time.monotonic() + 20
    response, _ = buy(victim)
    while response.status_code == 503 and time.monotonic() < deadline:
        assert response.json()["error"] == "database_unavailable", response.text
        time.sleep(float(response.headers["Retry-After"]))
        response, _ = buy(victim)
    assert response.status_code == 201, response.text
    assert Unit.objects.filter(sale=sale, order__isnull=False).count() == 2


def _waiting_for_a_lock() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_waiting_for_a_database_connection_is_capped(servers, make_sale, make_shopper):
    """DB_POOL_MAX_SIZE=1: while the one connection is busy (a purchase stuck behind a row
    lock this test holds), the next purchase waits at most DB_POOL_TIMEOUT for a connection,
    then answers 503 at once; the stuck one completes when the lock goes."""
    import threading

    from django.db import connections

    server = servers(DB_POOL_MAX_SIZE="1", DB_POOL_TIMEOUT="0.3", RATELIMIT_ENABLE="0")
    sale = make_sale(inventory=5)

    def buy(user):
        started = time.perf_counter()
        response = httpx.post(
            f"{server.url}/api/v1/flash_sales/{sale.id}/purchase",
            json={},
            headers={
                "Authorization": purchase_auth(user, sale)["HTTP_AUTHORIZATION"],
                "X-Idempotency-Key": uuid.uuid4().hex,
            },
            timeout=30,
        )
        return response, time.perf_counter() - started

    locker = connections.create_connection("default")
    try:
        locker.set_autocommit(False)
        with locker.cursor() as cursor:
            cursor.execute("SELECT 1 FROM inventory_unit WHERE sale_id = %s FOR UPDATE", [sale.id])
        stuck: list = []
        first = threading.Thread(target=lambda: stuck.append(buy(make_shopper())))
        first.start()
        # The first purchase holds the pool's only connection once it waits for the row lock.
        wait_for(_waiting_for_a_lock, timeout=30, what="the first purchase to wait for the lock")
        response, seconds = buy(make_shopper())
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "database_unavailable"
        assert seconds < 1.5, seconds
        assert not stuck, "the first purchase should still be waiting for the row lock"
    finally:
        locker.rollback()
        locker.close()
    first.join(30)
    assert stuck and stuck[0][0].status_code == 201, stuck
