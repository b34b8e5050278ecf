"""Chaos: while a sale runs, a fault; after the jobs have run, the audit is clean, no unit is
oversold, none is lost, no request answered 500.

Short versions run in `make test` (marker ``chaos``); scripts/chaos runs them at full scale
(CHAOS_SCALE=full) and prints what each did and found. The servers killed or cut here are
the scenario's own (a redis-server on a free port, a TCP proxy in front of RabbitMQ, Celery
workers it started, PostgreSQL backends of the test's own database).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from apps.core.redis import get_redis
from apps.core.testing.tcp_proxy import TcpProxy

from .chaos_harness import (
    OwnRedis,
    Sale,
    Worker,
    assert_sound,
    recover,
    say,
    scaled,
    sell_the_rest,
    shoppers,
    verdict,
)

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.RATELIMIT_ENABLE = False


@pytest.fixture
def own_redis(settings):
    server = OwnRedis()
    server.start()
    settings.REDIS_URL = server.url
    get_redis.cache_clear()
    try:
        yield server
    finally:
        server.close()
        get_redis.cache_clear()


def test_redis_killed_and_restarted_empty_mid_sale(own_redis, make_sale):
    units = scaled(40, 400)
    sale = make_sale(inventory=units)
    buyers = Sale(sale.id, threads=8)
    crowd = shoppers(scaled(120, 1500))
    third = len(crowd) // 3

    def fault():
        time.sleep(0.05)
        own_redis.kill()
        say(f"killed the sale's redis-server (port {own_redis.port})")
        time.sleep(0.5)
        own_redis.start()
        say("started it again, empty")

    say(f"sale of {units} units, {len(crowd)} shoppers, 8 at a time")
    buyers.run(crowd[:third])
    buyers.run(crowd[third : 2 * third], during=fault)
    buyers.run(crowd[2 * third :])
    say(f"after the fault: {dict(buyers.codes)}")
    recover(sale.id)
    sell_the_rest(sale, buyers)
    recover(sale.id)
    found = verdict(sale, buyers)
    assert_sound(found)
    assert found["units_taken"] == units, "units lost after Redis came back empty"


def test_postgres_connections_dropped_mid_sale(make_sale):
    crowd = shoppers(scaled(300, 1500))
    units = len(crowd) * 2 // 3 + 10  # the outage hits while units are still being sold
    sale = make_sale(inventory=units)
    buyers = Sale(sale.id, threads=8)
    stop = threading.Event()
    dropped = []
    with connection.cursor() as cursor:  # the test's own connection stays
        cursor.execute("SELECT pg_backend_pid()")
        keep = cursor.fetchone()[0]

    def fault():
        from django.db import connections

        own = connections.create_connection("default")
        try:
            with own.cursor() as cursor:
                while not stop.is_set():
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND pid <> %s",
                        [keep],
                    )
                    dropped.append(cursor.fetchone()[0])
                    time.sleep(0.05)
        finally:
            own.close()

    third = len(crowd) // 3
    say(
        f"sale of {units} units, {len(crowd)} shoppers; a third buy, then every other backend "
        "of the test database is terminated every 50 ms while the next third buy"
    )
    buyers.run(crowd[:third])
    side = threading.Thread(target=fault, daemon=True)
    side.start()
    try:
        buyers.run(crowd[third : 2 * third])
    finally:
        stop.set()
        side.join()
    say(
        f"terminated {sum(dropped)} connection(s) in {len(dropped)} rounds; "
        f"responses {dict(buyers.codes)}"
    )
    buyers.run(crowd[2 * third :])
    recover(sale.id)
    sell_the_rest(sale, buyers)
    recover(sale.id)
    found = verdict(sale, buyers)
    assert_sound(found)
    assert found["units_taken"] == units, "units lost after PostgreSQL dropped connections"


def _overdue(sale_id) -> int:
    """Put every reservation of the sale past its window, by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orders_order SET reserved_at = now() - interval '20 minutes', "
            "reserved_until = now() - interval '10 minutes' "
            "WHERE sale_id = %s AND status = 'RESERVED'",
            [sale_id],
        )
        return cursor.rowcount


def _wait_until(predicate, seconds: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def test_celery_worker_sigkilled_during_expiry(make_sale):
    from apps.orders.models import Order
    from apps.orders.tasks import expire_reservations

    units = scaled(200, 1000)
    sale = make_sale(inventory=units)
    buyers = Sale(sale.id, threads=8)
    buyers.run(shoppers(units))
    overdue = _overdue(sale.id)
    say(f"{overdue} reservations made overdue; starting a worker and queueing expiry jobs")

    def left() -> int:
        return Order.objects.filter(sale_id=sale.id, status="RESERVED").count()

    worker = Worker(concurrency=2)
    try:
        for _ in range(4):
            expire_reservations.delay()
        # SIGKILL while the worker is inside its expiry transaction
        in_job = _wait_until(lambda: _worker_in_transaction() or left() < overdue, 30, 0.003)
        worker.sigkill()
        say(
            f"worker {'was' if in_job and left() == overdue else 'may not have been'} inside "
            "its expiry transaction"
        )
        say(f"SIGKILLed the worker and its pool; {left()} reservation(s) not yet expired")
    finally:
        worker.stop()
    # The beat sends the job again every few seconds; a new worker picks it up.
    second = Worker(concurrency=2)
    try:
        expire_reservations.delay()
        done = _wait_until(lambda: left() == 0, 60)
        if not done:
            say(second.output())
    finally:
        second.stop()
        _end_worker_sessions()
    say(f"a new worker finished the job: {left()} reservation(s) left")
    assert done
    recover(sale.id)
    assert get_redis().scard(f"{_keys(sale.id).free}") == units, "units not back in Redis"
    found = verdict(sale, buyers)
    assert found["audit_clean"], found["audit"]
    assert found["units_taken"] == 0


def _worker_in_transaction() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL "
            "AND query ILIKE '%%orders_order%%'"
        )
        return cursor.fetchone()[0] > 0


def _end_worker_sessions() -> None:
    """A SIGKILLed worker's PostgreSQL sessions linger a moment; end them (this test
    database's only) so pytest-django can drop the database at the end of the run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _keys(sale_id):
    from apps.inventory.keys import sale_keys

    return sale_keys(sale_id)


def test_rabbitmq_cut_and_restored_mid_sale(make_sale, settings):
    """The broker vanishes (a proxy of the test's own drops every connection and refuses new
    ones) while shoppers buy and jobs are queued; purchases keep working, jobs queued after
    it returns run, the audit is clean."""
    from urllib.parse import urlparse

    from apps.orders.models import Order
    from apps.orders.tasks import expire_reservations
    from flashsale.celery import app

    broker = urlparse(settings.CELERY_BROKER_URL)
    proxy = TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    proxied = settings.CELERY_BROKER_URL.replace(
        f"{broker.hostname}:{broker.port or 5672}", f"127.0.0.1:{proxy.port}"
    )
    units = scaled(40, 400)
    sale = make_sale(inventory=units)
    buyers = Sale(sale.id, threads=8)
    crowd = shoppers(scaled(100, 1000))
    worker = Worker(broker_url=proxied, concurrency=2)

    def send(label: str) -> bool:
        try:
            with app.connection_for_write(proxied) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
                expire_reservations.apply_async(connection=conn, retry=False)
            return True
        except Exception as exc:
            say(f"{label}: could not queue a job ({type(exc).__name__}), as expected")
            return False

    try:
        assert _wait_until(lambda: proxy.connections > 0, 60), "the worker never connected"
        buyers.run(crowd[: len(crowd) // 3])
        proxy.cut()
        say(f"cut the broker (proxy port {proxy.port}); worker and producers lose it")
        sent_during = send("during the outage")
        buyers.run(crowd[len(crowd) // 3 : 2 * len(crowd) // 3])
        time.sleep(1)
        proxy.restore()
        say(f"broker back; responses so far {dict(buyers.codes)}")
        buyers.run(crowd[2 * len(crowd) // 3 :])
        overdue = _overdue(sale.id)
        say(f"{overdue} reservations made overdue; queueing the expiry job after the outage")
        sent = _wait_until(lambda: send("after the outage"), 30)
        assert sent, "could not publish after the broker came back"
        done = _wait_until(
            lambda: not Order.objects.filter(sale_id=sale.id, status="RESERVED").exists(), 60
        )
        if not done:
            say(worker.output())
        say(
            f"the reconnected worker ran the job: {'yes' if done else 'NO'} "
            f"(a job sent during the outage was {'queued' if sent_during else 'refused'})"
        )
        assert done
    finally:
        worker.stop()
        proxy.close()
        _end_worker_sessions()
    recover(sale.id)
    found = verdict(sale, buyers)
    assert found["audit_clean"], found["audit"]
    assert 500 not in buyers.codes and 599 not in buyers.codes
    assert found["units_taken"] == 0


def test_purchase_never_500_when_postgres_drops_before_the_block_list_is_loaded(make_sale):
    """Redis has lost the block list (a fresh or restarted Redis), PostgreSQL drops the
    connections: purchases must answer a JSON 4xx/503, never a 500."""
    sale = make_sale(inventory=20)
    buyers = Sale(sale.id, threads=8)
    crowd = shoppers(60)
    stop = threading.Event()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        keep = cursor.fetchone()[0]

    def fault():
        from django.db import connections

        own = connections.create_connection("default")
        try:
            with own.cursor() as cursor:
                while not stop.is_set():
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND pid <> %s",
                        [keep],
                    )
                    time.sleep(0.02)
        finally:
            own.close()

    side = threading.Thread(target=fault, daemon=True)
    side.start()
    try:
        buyers.run(crowd)
    finally:
        stop.set()
        side.join()
    say(f"responses with the block list cold: {dict(buyers.codes)}")
    assert 500 not in buyers.codes and 599 not in buyers.codes, dict(buyers.codes)
