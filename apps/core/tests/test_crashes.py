"""One crashed process does not stop the service (issue 10, item 2). The Procfile's web,
worker and releaser run under scripts/supervise.py (what `make run` uses) against the test
database; purchases and health checks run throughout while a granian worker, the Celery worker
and the releaser are each SIGKILLed: granian respawns its worker, the supervisor restarts the
others, the shop keeps answering (never a 500), and the sale's audit is clean.

scripts/chaos and the chaos tests in apps/orders cover what each crash does to the data; this
covers that the service survives it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from apps.core.testing.ports import free_port
from apps.core.testing.waiting import wait_for
from apps.orders.tests.chaos_harness import Sale, assert_sound, recover, shoppers, verdict

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(settings.BASE_DIR)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _procfile(tmp_path: Path) -> Path:
    """The real Procfile's web, worker and releaser; the worker on this test run's queue."""
    wanted = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name in ("web", "worker", "releaser"):
            if name == "worker":
                command = re.sub(r"\s-Q\s+\S+", "", command)
                command += f" -Q {settings.CELERY_TASK_DEFAULT_QUEUE}"
            wanted[name] = command.strip()
    path = tmp_path / "Procfile"
    path.write_text("".join(f"{name}: {command}\n" for name, command in wanted.items()))
    return path


class Load:
    """Purchases and health checks, a few at a time, until stopped; every answer counted."""

    def __init__(self, url: str, sale_id, credentials: list[tuple[int, str]]) -> None:
        self.url = url
        self.sale = Sale(sale_id)
        self.credentials = iter(credentials)
        self.codes: Counter = Counter()
        self.created: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(4)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                with self._lock:
                    credential = next(self.credentials, None)
                try:
                    if credential is None:
                        code = client.get("/healthz").status_code
                    else:
                        response = client.post(
                            f"/api/v1/flash_sales/{self.sale.sale_id}/purchase",
                            json={},
                            headers={
                                "Authorization": f"Bearer {self.sale.admission(credential[0])}",
                                "X-Idempotency-Key": uuid.uuid4().hex,
                            },
                        )
                        code = response.status_code
                        if code == 201:
                            with self._lock:
                                self.created.append(response.json()["order_id"])
                except httpx.TransportError:
                    code = "connection error"  # a request in flight on the killed worker
                with self._lock:
                    self.codes[code] += 1
                time.sleep(0.02)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(60)


def test_sigkilled_web_worker_celery_worker_and_releaser_do_not_stop_the_service(
    tmp_path, make_sale
):
    sale = make_sale(inventory=30)
    db = settings.DATABASES["default"]
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashsale.settings.base",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WEB_PORT": str(port),
        "WEB_THREADS": "4",
        "WORKER_CONCURRENCY": "1",
        "DB_POOL_MAX_SIZE": "4",
        "RATELIMIT_ENABLE": "0",
        "SALE_SNAPSHOT_SECONDS": "0",
        "SOLD_OUT_MEMORY_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "scripts/supervise.py",
            "--procfile",
            _procfile(tmp_path),
            "--log-dir",
            tmp_path / "log",
            "--grace",
            "10",
            "--metrics-dir",
            tmp_path / "metrics",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    load = Load(url, sale.id, shoppers(60))
    output = ""

    def process(word: str) -> int | None:
        return next((p for p in _children(supervisor.pid) if word in _cmdline(p)), None)

    def healthy() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=90)
        granian = wait_for(lambda: process("granian"), timeout=60)
        workers = wait_for(lambda: len(_children(granian)) == 2 and _children(granian), timeout=60)
        celery = wait_for(lambda: process("celery"), timeout=60)
        releaser = wait_for(lambda: process("run_releaser"), timeout=60)
        load.start()
        wait_for(lambda: sum(load.codes.values()) >= 20, timeout=60)

        # A granian worker: granian respawns it; the other worker answers meanwhile.
        os.kill(workers[0], signal.SIGKILL)
        wait_for(healthy, timeout=20)  # (at once, unless this machine is very busy)
        wait_for(lambda: len(set(_children(granian)) - {workers[0]}) == 2, timeout=60)
        assert process("granian") == granian, "granian itself kept running"

        # The Celery worker and the releaser: the supervisor starts each again.
        os.kill(celery, signal.SIGKILL)
        os.kill(releaser, signal.SIGKILL)
        wait_for(lambda: (process("celery") or celery) != celery, timeout=60)
        wait_for(lambda: (process("run_releaser") or releaser) != releaser, timeout=60)
        assert healthy()
        seen = sum(load.codes.values())
        wait_for(lambda: sum(load.codes.values()) >= seen + 20, timeout=60)
        load.stop()
        metrics = httpx.get(url + "/metrics", timeout=10).text
    finally:
        load.stop()
        supervisor.send_signal(signal.SIGINT)
        try:
            output, _ = supervisor.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(supervisor.pid, signal.SIGKILL)
            output, _ = supervisor.communicate()
    assert supervisor.returncode == 0, output
    assert "celery" not in "".join(_cmdline(p) for p in _children(supervisor.pid))
    assert "worker was killed by SIGKILL; restarting" in output, output
    assert "releaser was killed by SIGKILL; restarting" in output, output

    # Never a 500; at most the requests in flight on the killed worker were cut.
    assert 500 not in load.codes, load.codes
    assert load.codes["connection error"] <= 4, load.codes
    assert load.codes[200] + load.codes[201] > 0, load.codes
    buyers = load.sale
    buyers.created = load.created
    buyers.codes = Counter({k: v for k, v in load.codes.items() if isinstance(k, int)})
    recover(sale.id)
    assert_sound(verdict(sale, buyers))

    # /metrics adds up every process's files: the killed granian worker's purchases are still
    # counted (its files outlive it), and the releaser, a process of its own, is there too.
    reserved = _sample_sum(metrics, "flashsale_purchase_attempts_total", 'outcome="reserved"')
    cut = load.codes["connection error"]
    assert len(load.created) <= reserved <= len(load.created) + cut, (reserved, load.created)
    assert _sample_sum(metrics, "flashsale_releaser_ticks_total") > 0


def _sample_sum(text: str, name: str, label: str = "") -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and label in line and not line.startswith("#")
    )
