"""Fault injection for the chaos scenarios (apps/orders/tests/test_chaos.py, scripts/chaos).

Everything that is killed or cut here is the scenario's own: a redis-server on a free
loopback port, a TCP proxy (apps/core/testing/tcp_proxy.py) in front of the shared RabbitMQ,
Celery workers it started, and PostgreSQL backends of the test's own database. The machine's
shared services are never stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from apps.core.testing.ports import free_port
from apps.core.tokens import shopper_token_issue

ROOT = Path(__file__).resolve().parents[3]
SCALE = os.environ.get("CHAOS_SCALE", "short")  # "short" in make test, "full" in scripts/chaos


def scaled(short: int, full: int) -> int:
    return full if SCALE == "full" else short


def say(message: str) -> None:
    """Each scenario prints what it did and what it found (shown with pytest -s)."""
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------- Redis
class OwnRedis:
    """A redis-server of the scenario's own: kill it, start it again empty, same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="fs-chaos-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from apps.core.testing.redis_server import redis_server_start

        self.process = redis_server_start(port=self.port, workdir=self.workdir)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------------- Celery worker
class Worker:
    """A Celery worker process of the scenario's own, on the test run's queue and database."""

    def __init__(self, broker_url: str | None = None, concurrency: int = 2) -> None:
        db = connection.settings_dict
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="flashsale.settings.base",
            DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}",
            REDIS_URL=settings.REDIS_URL,
            REDIS_KEY_PREFIX=settings.REDIS_KEY_PREFIX,
            CELERY_BROKER_URL=broker_url or settings.CELERY_BROKER_URL,
            SECRET_KEY=settings.SECRET_KEY,
            DEBUG="1",
            LOG_LEVEL="WARNING",
            RATELIMIT_ENABLE="0",
        )
        self.queue = settings.CELERY_TASK_DEFAULT_QUEUE
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop())
            prefix="fs-chaos-worker-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "flashsale",
                "worker",
                "-Q",
                self.queue,
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "-l",
                "WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"chaos-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=str(ROOT),
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def sigkill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.sigkill()
        self.log.close()

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-3000:]


# ---------------------------------------------------------------------------- shoppers, load
def shoppers(count: int) -> list[tuple[int, str]]:
    """``count`` new shopper accounts and their bearer tokens."""
    User = get_user_model()
    tag = uuid.uuid4().hex[:8]
    User.objects.bulk_create(
        [User(username=f"chaos-{tag}-{i}", password="!") for i in range(count)]
    )
    users = User.objects.filter(username__startswith=f"chaos-{tag}-").values_list("id", "username")
    return [(uid, shopper_token_issue(user_id=uid, username=name)[0]) for uid, name in users]


class Sale:
    """Purchase attempts through the real API (middleware, view, services), many at once."""

    def __init__(self, sale_id, threads: int = 8) -> None:
        self.sale_id = str(sale_id)
        self.threads = threads
        self.codes: Counter = Counter()
        self.created: list[str] = []  # order ids of every 201
        self._lock = threading.Lock()
        self._local = threading.local()

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = Client()
        return client

    def admission(self, user_id: int) -> str:
        """The purchase's credential: an admission token for this sale (as the waiting room
        hands out), or the shopper token where there is no waiting room."""
        try:
            from apps.waiting_room.tokens import admission_token_issue
        except ImportError:
            return shopper_token_issue(user_id=user_id, username=f"u{user_id}")[0]
        return admission_token_issue(user_id=user_id, sale_id=self.sale_id, lifetime_seconds=900)[0]

    def attempt(self, token: str, key: str | None = None) -> int:
        try:
            response = self._client().post(
                f"/api/v1/flash_sales/{self.sale_id}/purchase",
                data=b'{"quantity": 1}',
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                HTTP_X_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
            )
            code = response.status_code
            if code not in self.codes and code not in (201, 410, 409):
                say(f"first {code}: {response.content[:300]!r}")
            body = response.json() if code < 500 or code == 503 else {}
        except Exception as exc:  # a 500 would surface as an exception in the test client
            say(f"request raised {exc!r}")
            code, body = 599, {}
        with self._lock:
            self.codes[code] += 1
            if code == 201:
                self.created.append(body["order_id"])
        return code

    def run(self, credentials: list[tuple[int, str]], during=None) -> None:
        """Every shopper tries once, ``threads`` at a time; ``during`` runs alongside."""
        side = threading.Thread(target=during, daemon=True) if during else None
        if side:
            side.start()

        def one(credential):
            try:
                return self.attempt(self.admission(credential[0]))
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            list(pool.map(one, credentials))
        if side:
            side.join(timeout=60)


# ---------------------------------------------------------------------------- verdict
def recover(sale_id) -> None:
    """What the scheduled jobs do after a fault (reconcile, orphan sweep), run now."""
    from apps.inventory.reconcile import holds_sweep_orphans, inventory_reconcile

    for _ in range(2):
        inventory_reconcile(sale_id=sale_id)
        holds_sweep_orphans(sale_id=sale_id, grace_seconds=0)
    inventory_reconcile(sale_id=sale_id)


def verdict(sale, buyers: Sale) -> dict:
    """The audit plus the scenario's own checks: every 201 is a holding order, no unit is
    oversold, and the units PostgreSQL holds match the orders."""
    from apps.inventory.audit import sale_audit
    from apps.inventory.models import Unit
    from apps.orders.models import HOLDING_STATUSES, Order

    report = sale_audit(sale_id=sale.id)
    holding = set(
        str(i)
        for i in Order.objects.filter(sale_id=sale.id, status__in=HOLDING_STATUSES).values_list(
            "id", flat=True
        )
    )
    taken = Unit.objects.filter(sale_id=sale.id, order__isnull=False).count()
    known = set(
        str(i) for i in Order.objects.filter(id__in=buyers.created).values_list("id", flat=True)
    )
    found = {
        "audit_clean": report.clean,
        "audit": report.render(),
        "holding_orders": len(holding),
        "units_taken": taken,
        "inventory": sale.total_inventory,
        "phantom_201": len(set(buyers.created) - known),  # a 201 with no order behind it
        "codes": dict(buyers.codes),
    }
    say(
        f"found: {len(holding)} holding orders, {taken} units taken of {sale.total_inventory}, "
        f"responses {dict(sorted(buyers.codes.items()))}, phantom 201s "
        f"{found['phantom_201']}, audit {'clean' if report.clean else 'NOT CLEAN'}"
    )
    if not report.clean:
        say(report.render())
    return found


def assert_sound(found: dict) -> None:
    assert found["audit_clean"], found["audit"]
    assert found["units_taken"] <= found["inventory"]
    assert found["units_taken"] == found["holding_orders"]
    assert found["phantom_201"] == 0
    assert 500 not in found["codes"] and 599 not in found["codes"], found["codes"]


def sell_the_rest(sale, buyers: Sale) -> None:
    """After recovery every remaining unit must still be sellable (none lost)."""
    from apps.inventory.models import Unit

    free = Unit.objects.filter(sale_id=sale.id, order__isnull=True).count()
    if free:
        buyers.run(shoppers(free + 5))
