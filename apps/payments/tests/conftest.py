"""Payments test fixtures: real simulated-gateway processes, a real Celery worker process,
reservations made through the real purchase service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from apps.core.testing.ports import free_port
from apps.core.testing.waiting import wait_for
from apps.orders.models import Order
from apps.orders.services import order_reserve
from apps.payments.gateways.base import gateway_get
from apps.sales.selectors import sale_snapshot

ROOT = Path(__file__).resolve().parents[3]
RUN = settings.TEST_RUN  # the run name, with the xdist worker (gw0 ...) when there is one
GATEWAY_DSN = f"postgresql://postgres@127.0.0.1:5432/flashsale_gateway_test_{RUN}"
# Fast versions of the test cards' delays; the card semantics are unchanged.
CLIENT_TIMEOUT = 1.0
HANG_SECONDS = 1.6  # 4000000000009995: longer than the client's timeout
SLOW_SECONDS = 2.5  # 4000000000003220


# The gateway and worker processes' logs, kept for reading after a failure; this run's only.
LOG_DIR = Path(tempfile.gettempdir()) / f"fs-paytests-{RUN}"
LOG_DIR.mkdir(exist_ok=True)


def _log_file(prefix: str):
    return tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
        prefix=prefix, suffix=".log", dir=LOG_DIR, delete=False
    )


class GatewayProcess:
    """One simulated gateway service process; stop() and start() simulate an outage."""

    def __init__(self, name: str, *extra: str):
        self.name = name
        self.port = free_port()
        self.extra = extra
        self.process: subprocess.Popen | None = None
        self.log = _log_file(f"gateway-{name}-")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "apps.payments.gateway_service",
                "--port", str(self.port), "--name", self.name, "--dsn", GATEWAY_DSN,
                "--hang-seconds", str(HANG_SECONDS), "--slow-seconds", str(SLOW_SECONDS),
                "--pool-size", "4",
                *self.extra,
            ],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def healthy() -> bool:
            try:
                return httpx.get(self.url + "/health", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=20, what=f"gateway {self.name} to start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def charges(self, **params) -> list[dict]:
        return httpx.get(self.url + "/v1/charges", params=params, timeout=5).json()["charges"]

    def attempts_of(self, key: str) -> int:
        response = httpx.get(self.url + "/v1/attempts", params={"idempotency_key": key}, timeout=5)
        return response.json()["n"]

    def refund_directly(self, charge_id: str, key: str = "") -> dict:
        """A refund made at the gateway by someone else (a support desk, the provider's
        dashboard): not through the shop."""
        response = httpx.post(
            self.url + "/v1/refunds",
            json={"charge_id": charge_id, "idempotency_key": key or f"desk-{uuid.uuid4().hex}"},
            timeout=5,
        )
        response.raise_for_status()
        return response.json()

    def dispute(self, charge_id: str) -> dict:
        response = httpx.post(
            self.url + "/v1/disputes", json={"charge_id": charge_id, "reason": "fraud"}, timeout=5
        )
        response.raise_for_status()
        return response.json()

    def charge_of(self, key: str) -> dict | None:
        response = httpx.get(self.url + "/v1/charges", params={"idempotency_key": key}, timeout=5)
        return response.json() if response.status_code == 200 else None


@pytest.fixture(scope="session")
def fresh_gateway_ledger():
    """Each test session starts with an empty gateway ledger (its own database)."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "flashsale_gateway_test_{RUN}" WITH (FORCE)')
    for old_log in LOG_DIR.glob("*.log"):
        old_log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def gateway(fresh_gateway_ledger):
    process = GatewayProcess("primary")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def backup_gateway(fresh_gateway_ledger):
    process = GatewayProcess("backup")
    process.start()
    yield process
    process.stop()


def _use_gateways(
    settings, primary_url: str, backup_url: str = "", timeout: float = CLIENT_TIMEOUT
) -> None:
    cls = "apps.payments.gateways.simulated.SimulatedGateway"
    settings.PAYMENT_GATEWAY_TIMEOUT = timeout
    settings.PAYMENT_GATEWAYS = {
        "primary": {"CLASS": cls, "OPTIONS": {"url": primary_url, "timeout": timeout}},
    }
    settings.PAYMENT_BACKUP_GATEWAY = ""
    if backup_url:
        settings.PAYMENT_GATEWAYS["backup"] = {
            "CLASS": cls,
            "OPTIONS": {"url": backup_url, "timeout": timeout},
        }
        settings.PAYMENT_BACKUP_GATEWAY = "backup"
    gateway_get.cache_clear()


@pytest.fixture
def pay_settings(settings, gateway):
    """This process talks to the test gateway with short timeouts."""
    _use_gateways(settings, gateway.url)
    settings.PAYMENT_BREAKER_OPEN_SECONDS = 2.0
    settings.PAYMENT_MAX_ATTEMPTS = 8
    settings.PAYMENT_RETRY_CAP_SECONDS = 1.0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    yield settings
    gateway_get.cache_clear()


@pytest.fixture
def use_gateways(settings):
    def use(primary_url: str, backup_url: str = "", timeout: float = CLIENT_TIMEOUT) -> None:
        _use_gateways(settings, primary_url, backup_url, timeout)

    yield use
    gateway_get.cache_clear()


@pytest.fixture
def reserve(make_shopper):
    """reserve(sale, user=None) → a RESERVED Order made by the real purchase service."""

    def make(sale, user=None) -> Order:
        user = user or make_shopper()
        if not user.email:
            user.email = f"{user.username}@example.test"
            user.save(update_fields=["email"])
        body = order_reserve(
            sale=sale_snapshot(str(sale.id)),
            user_id=user.id,
            quantity=1,
            idempotency_key=uuid.uuid4().hex,
        ).body
        return Order.objects.get(id=body["order_id"])

    return make


class Worker:
    def __init__(self, env: dict):
        self.env = env
        self.process: subprocess.Popen | None = None
        self.log = _log_file("worker-")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/celery"), "-A", "flashsale", "worker",
                "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--pool=prefork", "-c", "2",
                "-l", "info", "--without-heartbeat", "--without-gossip", "--without-mingle",
                "-n", f"paytest-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError("worker died:\n" + Path(self.log.name).read_text()[-3000:])
            return b"ready." in Path(self.log.name).read_bytes()

        wait_for(ready, timeout=40, what="the worker to start")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once (no warm shutdown)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None


def purge_queue() -> None:
    from flashsale.celery import app

    with app.connection_for_write() as conn:
        channel = conn.channel()
        try:
            channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
        except Exception:  # noqa: BLE001 - the queue may not exist yet
            pass


@pytest.fixture
def worker_factory(gateway, tmp_path):
    """start(**env) → a running Celery worker process on this run's queue, test database,
    Redis prefix and gateway. Killed at the end of the test."""
    workers: list[Worker] = []
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()

    def start(**overrides) -> Worker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "apps.payments.tests.worker_settings",
            "FS_TEST_REDIS_PREFIX": settings.REDIS_KEY_PREFIX,
            "TEST_RUN_NAME": os.environ.get("TEST_RUN_NAME", ""),
            "PAYMENT_GATEWAY_URL": gateway.url,
            "PAYMENT_GATEWAY_TIMEOUT": str(CLIENT_TIMEOUT),
            "PAYMENT_BREAKER_OPEN_SECONDS": "2",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            "LOG_LEVEL": "WARNING",
            **{k: str(v) for k, v in overrides.items()},
        }
        worker = Worker(env)
        worker.start()
        workers.append(worker)
        return worker

    start.mail_dir = mail_dir
    purge_queue()
    yield start
    for worker in workers:
        worker.kill()
    purge_queue()
    _end_worker_sessions()


def _end_worker_sessions() -> None:
    """A SIGKILLed worker's PostgreSQL sessions linger a moment; end them so the test
    database can be dropped."""
    import psycopg

    # A connection of its own: Django's may already be closed by the db fixture's teardown,
    # and reopening it here would leave a session behind.
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'fs-paytest-worker'",
            [settings.DATABASES["default"]["TEST"]["NAME"]],
        )
