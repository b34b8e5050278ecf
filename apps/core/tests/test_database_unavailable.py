"""PostgreSQL running out of connections (issue 9, finding 8): a web process holds at most its
pool's connections whatever its thread count, and when the database refuses a connection every
endpoint (API, auth token, pages, admin) answers 503 with Retry-After, never a 500.

Against a PostgreSQL of the test's own (a small max_connections), with a real granian server
using the production settings."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from django.conf import settings

from apps.core.testing.postgres_server import PrivatePostgres
from apps.protection.tests.servers import AppServer
from conftest import bearer

pytestmark = pytest.mark.django_db

MAX_CONNECTIONS = 24
POOL_SIZE = 16  # the default DB_POOL_MAX_SIZE
GRANIAN_THREADS = 32  # as in the Procfile


def _hold(pg: PrivatePostgres, count: int | None) -> list[psycopg.Connection]:
    """Open ``count`` connections (None: until PostgreSQL refuses one) and keep them."""
    held = []
    while count is None or len(held) < count:
        try:
            held.append(psycopg.connect(pg.url("postgres"), connect_timeout=2))
        except psycopg.OperationalError as exc:
            if count is None and "too many clients" in str(exc):
                return held
            raise
    return held


CSRF = "c" * 16 + uuid.uuid4().hex[:16]  # an unmasked CSRF secret, sent as cookie and field


def _server_connections(ours: psycopg.Connection) -> int:
    return ours.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'flashsale' "
        "AND backend_type = 'client backend'"
    ).fetchone()[0]


def _session_cookie() -> dict:
    # Any session id makes the request look its session up in PostgreSQL.
    return {"Cookie": f"sessionid={uuid.uuid4().hex}; csrftoken={CSRF}"}


@pytest.fixture
def private_postgres():
    test_db = settings.DATABASES["default"]
    with PrivatePostgres(max_connections=MAX_CONNECTIONS) as pg:
        pg.create_database(
            "flashsale",
            schema_from=f"postgresql://{test_db['USER'] or 'postgres'}@"
            f"{test_db['HOST'] or '127.0.0.1'}:{test_db['PORT'] or 5432}/{test_db['NAME']}",
        )
        yield pg


def test_a_process_stays_within_its_pool_and_a_refused_connection_is_a_503_everywhere(
    private_postgres, shopper
):
    pg = private_postgres
    held: list[psycopg.Connection] = []
    server = AppServer(
        env={
            "DATABASE_URL": pg.url("flashsale"),
            "DEBUG": None,  # production defaults: DEBUG off, the default pool
            "DB_POOL_MAX_SIZE": None,
            "RATELIMIT_ENABLE": "0",
        },
        blocking_threads=GRANIAN_THREADS,
    )
    try:
        # All but POOL_SIZE + 1 connections are taken: a process that opened one per thread
        # (32) would be refused; the pool never opens more than 16.
        held = _hold(pg, MAX_CONNECTIONS - POOL_SIZE - 1)
        with httpx.Client(base_url=server.url, timeout=30) as client:

            def admin(_):
                return client.get("/admin/", headers=_session_cookie()).status_code

            with ThreadPoolExecutor(64) as pool:
                statuses = list(pool.map(admin, range(192)))
        # Never a 500: the login redirect, or (threads waiting past DB_POOL_TIMEOUT on a busy
        # machine) a 503 with Retry-After.
        assert set(statuses) <= {302, 503}, sorted(set(statuses))
        assert statuses.count(302) > len(statuses) // 2, statuses
        # The process holds at most its pool's connections (32 threads, 16 connections).
        assert _server_connections(held[0]) <= POOL_SIZE

        # Now PostgreSQL refuses every new connection, and the server's pooled ones are gone.
        held += _hold(pg, None)
        held[0].execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> ALL(%s) AND backend_type = 'client backend'",
            [[c.info.backend_pid for c in held]],
        )
        held += _hold(pg, None)

        with httpx.Client(base_url=server.url, timeout=30) as client:
            answers = {
                "token": client.post(
                    "/api/v1/auth/token", json={"username": "alice", "password": "pw"}
                ),
                "api": client.get(f"/api/v1/orders/{uuid.uuid4()}", headers=_auth(shopper)),
                "admin": client.get("/admin/", headers=_session_cookie()),
                "login": client.post(
                    "/accounts/login/",
                    data={"username": "alice", "password": "pw", "csrfmiddlewaretoken": CSRF},
                    headers=_session_cookie(),
                ),
                "page": client.get(f"/orders/{uuid.uuid4()}/", headers=_session_cookie()),
            }
        for name, response in answers.items():
            assert response.status_code == 503, (name, response.status_code, response.text[:300])
            assert int(response.headers["Retry-After"]) > 0, name
        for name in ("token", "api"):
            body = answers[name].json()
            assert body["error"] == "database_unavailable" and body["detail"], name
        for name in ("admin", "login", "page"):
            assert answers[name].headers["Content-Type"].startswith("text/html"), name
            assert "We are very busy right now" in answers[name].text, name

        # Connections back: the same process serves again without a restart (once the pool's
        # reconnection backoff has run).
        for connection in held:
            connection.close()
        held = []
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while client.get("/admin/", headers=_session_cookie()).status_code != 302:
                assert time.monotonic() < deadline, "the server did not reconnect"
                time.sleep(0.2)
    finally:
        for connection in held:
            connection.close()
        server.stop()


def _auth(user) -> dict:
    return {"Authorization": bearer(user)["HTTP_AUTHORIZATION"]}
