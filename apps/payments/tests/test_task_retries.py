"""Tasks retry on transient database and broker errors, with Celery's backoff: a charge that
meets a database refusing connections is not lost until reconciliation, it runs again and
completes. The refusal is real and touches nobody else: the worker runs as a role of this
test's own whose connection limit is set to 0 (PostgreSQL answers "too many connections
for role", SQLSTATE 53300, the class of "too many clients already")."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from apps.orders.models import Order, OrderStatus
from apps.payments.models import AttemptOutcome, Payment, PaymentStatus
from apps.payments.services import payment_create

from .conftest import wait_for
from .test_services import OK

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/"
ROLE = "fs_test_worker_" + "".join(c for c in settings.TEST_RUN.lower() if c.isalnum())


def _admin(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(ADMIN_DSN + dbname, autocommit=True)


def _set_connection_limit(limit: int) -> None:
    """limit 0: the role's new connections are refused and its open ones are ended."""
    with _admin() as conn:
        conn.execute(f"ALTER ROLE {ROLE} CONNECTION LIMIT {int(limit)}")
        if limit == 0:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [ROLE],
            )


@pytest.fixture
def worker_role():
    """A login role of this run's own with rights on the test database only."""
    test_db = settings.DATABASES["default"]["NAME"]

    def drop() -> None:
        with _admin() as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]).fetchone():
                return
            conn.execute(f"ALTER ROLE {ROLE} CONNECTION LIMIT -1")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [ROLE],
            )
        with _admin(test_db) as conn:
            conn.execute(f"DROP OWNED BY {ROLE}")
        with _admin() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {ROLE}")

    drop()  # a crashed earlier run's
    with _admin() as conn:
        conn.execute(f"CREATE ROLE {ROLE} LOGIN")
        conn.execute(f'GRANT CONNECT ON DATABASE "{test_db}" TO {ROLE}')
    with _admin(test_db) as conn:
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {ROLE}")
        conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
    try:
        yield ROLE
    finally:
        drop()


def _refusals_retried(log: Path) -> int:
    """Celery's autoretry lines: "Task payments.charge[…] retry: Retry in 2s: Operational…"."""
    return sum(
        1
        for line in log.read_text().splitlines()
        if "payments.charge[" in line and "retry: Retry in" in line and "OperationalError" in line
    )


@pytest.mark.parametrize("pool", [False, True], ids=["connection", "psycopg-pool"])
def test_charge_meeting_a_refusing_database_retries_and_completes(
    pay_settings, worker_factory, worker_role, make_sale, reserve, pool
):
    """Without a pool the connect fails; with production's psycopg pool the pool's own
    connects fail and the task's getconn times out (PoolTimeout): both are retried."""
    order = reserve(make_sale())
    worker = worker_factory(
        FS_TEST_DB_USER=worker_role, FS_TEST_DB_POOL="1" if pool else "", LOG_LEVEL="INFO"
    )
    log = Path(worker.log.name)
    _set_connection_limit(0)
    try:
        payment, _ = payment_create(order_id=order.id, user_id=order.user_id, card_number=OK)
        wait_for(
            lambda: _refusals_retried(log) >= 2,
            timeout=30,
            what="the charge task to meet the refusal and be retried (twice)",
        )
        text = log.read_text()
        assert "too many connections for role" in text  # refused, as we meant
        assert "raised unexpected" not in text  # the task never died of it
        row = Payment.objects.get(id=payment.id)
        assert row.status == PaymentStatus.PENDING and row.attempts == 0
    finally:
        _set_connection_limit(-1)
    wait_for(
        lambda: Order.objects.get(id=order.id).status == OrderStatus.PAID,
        timeout=30,
        what="the retried charge to complete",
    )
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.attempts == 1
    # The task did it, not reconciliation (which would have looked the charge up).
    assert [a.outcome for a in payment.attempt_log.all()] == [AttemptOutcome.SUCCEEDED]
