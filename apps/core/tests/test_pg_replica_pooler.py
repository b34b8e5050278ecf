"""PostgreSQL scale-out on real engines: a primary of the test's own, a streaming replica of it
(pg_basebackup), PgBouncer in transaction mode in front of both, and the app server (granian)
configured with DATABASE_URL / DATABASE_REPLICA_URL through PgBouncer. Started once for the
module (apps/core/testing/pg_servers.py) and torn down after it."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import psycopg
import pytest
from django.conf import settings

from apps.core.db_router import PrimaryReplicaRouter, stale_read_alias, stale_reads
from apps.core.testing.pg_servers import pg_primary_start, pg_replica_start, pgbouncer_start
from apps.protection.tests.servers import AppServer
from conftest import admitted

pytestmark = pytest.mark.pgscale
ROOT = Path(settings.BASE_DIR)
DB = "flashsale"
POOL_SIZE = 2  # fewer server connections than the node's 4 threads: they must share


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def engines(django_db_setup, django_db_blocker):
    primary = pg_primary_start()
    replica = bouncer = None
    try:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB}")
        env = {
            "DJANGO_SETTINGS_MODULE": "flashsale.settings.base",
            "DEBUG": "1",
            "DATABASE_URL": primary.url(DB),
            "REDIS_URL": settings.REDIS_URL,
            "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
            "SECRET_KEY": settings.SECRET_KEY,
            "JWT_KEYS": settings.JWT_KEYS,
            "LOG_LEVEL": "WARNING",
        }
        # The schema: a copy of this run's migrated test database (faster than migrating).
        source = settings.DATABASES["default"]
        dump = subprocess.run(
            ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--no-owner", source["NAME"]],
            check=True,
            capture_output=True,
            timeout=120,
        ).stdout
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", primary.dsn(DB)],
            input=dump,
            check=True,
            capture_output=True,
            timeout=120,
        )
        replica = pg_replica_start(primary)
        bouncer = pgbouncer_start(
            {DB: (primary.port, DB), f"{DB}_replica": (replica.port, DB)}, pool_size=POOL_SIZE
        )
        yield SimpleNamespace(primary=primary, replica=replica, bouncer=bouncer, env=env)
    finally:
        for engine in (bouncer, replica, primary):
            if engine is not None:
                engine.stop()


@pytest.fixture(scope="module")
def server(engines):
    """The app behind PgBouncer: primary for decisions, replica for stale-tolerant reads."""
    app = AppServer(
        env={
            "DATABASE_URL": engines.bouncer.url(DB),
            "DATABASE_REPLICA_URL": engines.bouncer.url(f"{DB}_replica"),
            "DATABASE_POOLER": "pgbouncer",
            "RATELIMIT_ENABLE": "0",
            "REDIS_KEY_PREFIX": engines.env["REDIS_KEY_PREFIX"],
        }
    )
    try:
        yield app
    finally:
        app.stop()


def _sale(engines, *, inventory: int) -> str:
    return (
        _manage(
            engines.env,
            "create_flash_sale",
            "--product",
            f"P {uuid.uuid4().hex[:6]}",
            "--inventory",
            str(inventory),
            "--starts-in",
            "0s",
            "--duration",
            "1h",
            "--pow-difficulty",
            "0",
        )
        .strip()
        .splitlines()[-1]
    )


def _shoppers(engines, count: int) -> list[int]:
    tag = uuid.uuid4().hex[:8]
    with psycopg.connect(engines.primary.dsn(DB), autocommit=True) as conn:
        rows = conn.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined)"
            " SELECT '!', false, %s || g, '', '', '', false, true, now()"
            " FROM generate_series(1, %s) g RETURNING id",
            [f"pg-{tag}-", count],
        ).fetchall()
    return [row[0] for row in rows]


def _buy(url: str, sale_id: str, user_id: int) -> int:
    headers = {
        "Authorization": admitted(SimpleNamespace(id=user_id), SimpleNamespace(id=sale_id))[
            "HTTP_AUTHORIZATION"
        ],
        "X-Idempotency-Key": uuid.uuid4().hex,
    }
    return httpx.post(
        f"{url}/api/v1/flash_sales/{sale_id}/purchase",
        json={"quantity": 1},
        headers=headers,
        timeout=60,
    ).status_code


def _replica_caught_up(engines) -> None:
    with psycopg.connect(engines.primary.dsn(), autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + 30
    with psycopg.connect(engines.replica.dsn(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            done = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [str(target)]
            ).fetchone()[0]
            if done:
                return
            time.sleep(0.02)
    raise AssertionError("the replica did not catch up")


def test_the_router_sends_only_stale_tolerant_reads_to_the_replica(monkeypatch):
    from apps.core import db_router

    router = PrimaryReplicaRouter()
    both = SimpleNamespace(DATABASES={"default": {}, "replica": {}})
    monkeypatch.setattr(db_router, "settings", both)
    assert router.db_for_read(None) == "default"
    with stale_reads():
        assert router.db_for_read(None) == "replica" == stale_read_alias()
        assert router.db_for_write(None) == "default"
    assert router.allow_migrate("replica", "orders") is False
    monkeypatch.setattr(db_router, "settings", SimpleNamespace(DATABASES={"default": {}}))
    with stale_reads():
        assert router.db_for_read(None) == "default"  # no replica configured: the primary


@pytest.mark.django_db
def test_sale_list_reads_the_replica_and_purchases_the_primary(engines, server):
    """With the replica's replay paused, a sale created on the primary is missing from the
    public list (read on the replica) yet can be bought at once (decided on the primary);
    the order exists on the primary only until the replica replays it."""
    seen = _sale(engines, inventory=5)
    _replica_caught_up(engines)
    with psycopg.connect(engines.replica.dsn(), autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            hidden = _sale(engines, inventory=5)
            listed = {sale["id"] for sale in httpx.get(f"{server.url}/api/v1/flash_sales/").json()}
            assert seen in listed and hidden not in listed
            (buyer,) = _shoppers(engines, 1)
            assert _buy(server.url, hidden, buyer) == 201
            query = "SELECT count(*) FROM orders_order WHERE sale_id = %s"
            with psycopg.connect(engines.primary.dsn(DB)) as primary:
                assert primary.execute(query, [hidden]).fetchone()[0] == 1
            replica_db = psycopg.connect(engines.replica.dsn(DB), autocommit=True)
            with replica_db:
                assert replica_db.execute(query, [hidden]).fetchone()[0] == 0
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
    _replica_caught_up(engines)


@pytest.mark.django_db
def test_purchase_race_through_pgbouncer_never_oversells(engines, server):
    """50 buyers at once for 10 units through PgBouncer (transaction mode, 2 server
    connections): exactly 10 orders, the audit clean, and PostgreSQL never saw more than the
    pool's connections from the app."""
    sale_id = _sale(engines, inventory=10)
    buyers = _shoppers(engines, 50)
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = Counter(pool.map(lambda user: _buy(server.url, sale_id, user), buyers))
    assert codes == {201: 10, 410: 40}, codes
    with psycopg.connect(engines.primary.dsn(DB)) as primary:
        orders = primary.execute(
            "SELECT count(*) FROM orders_order WHERE sale_id = %s", [sale_id]
        ).fetchone()[0]
        backends = primary.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [DB],
        ).fetchone()[0]
    assert orders == 10
    assert backends <= POOL_SIZE
    pools = {row["database"]: row for row in engines.bouncer.show("POOLS")}
    assert pools[DB]["pool_mode"] == "transaction"
    _manage(engines.env, "audit_sale", sale_id)


@pytest.mark.django_db
def test_a_promoted_replica_takes_writes(engines):
    """Failover on this machine: pg_ctl promote turns the replica into a primary that takes
    writes (last: the module's replica is a primary afterwards)."""
    _replica_caught_up(engines)
    assert engines.replica.in_recovery()
    started = time.monotonic()
    engines.replica.promote()
    deadline = time.monotonic() + 30
    while engines.replica.in_recovery() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not engines.replica.in_recovery()
    print(f"\npg_ctl promote: the replica took writes after {time.monotonic() - started:.2f} s")
    with psycopg.connect(engines.replica.dsn(DB), autocommit=True) as promoted:
        promoted.execute("CREATE TABLE promoted_probe (id int)")
        promoted.execute("INSERT INTO promoted_probe VALUES (1)")
        assert promoted.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 0
