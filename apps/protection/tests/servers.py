"""Real app server processes (granian, as in the Procfile) for tests that need more than one
process or a dependency cut under a running server."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
from django.conf import settings

from apps.core.testing.ports import free_port
from apps.core.testing.processes import process_stop


class AppServer:
    def __init__(
        self,
        *,
        env: dict[str, str | None] | None = None,
        workers: int = 1,
        blocking_threads: int = 4,
        extra_args: tuple[str, ...] = (),
    ):
        """``env`` adds to the server's environment; a value of None removes that variable."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        db = settings.DATABASES["default"]
        base_env = {
            "DJANGO_SETTINGS_MODULE": "flashsale.settings.base",
            "DATABASE_URL": "postgres://{}@{}:{}/{}".format(
                db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["NAME"]
            ),
            "REDIS_URL": settings.REDIS_URL,
            "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "JWT_KEYS": settings.JWT_KEYS,
            "DEBUG": "1",
            "SALE_SNAPSHOT_SECONDS": "0",
            "SOLD_OUT_MEMORY_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
        }
        self.log = open(f"/tmp/fs-test-server-{self.port}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(Path(settings.BASE_DIR) / ".venv/bin/granian"),
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--blocking-threads",
                str(blocking_threads),
                *extra_args,
                "flashsale.wsgi:application",
            ],
            cwd=settings.BASE_DIR,
            env={
                name: value
                for name, value in {**os.environ, **base_env, **(env or {})}.items()
                if value is not None
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped as a group: no granian worker outlives it
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = Path(self.log.name).read_text()[-2000:]
                raise RuntimeError(f"server did not start: {log}")
            time.sleep(0.1)

    def stop(self) -> None:
        process_stop(self.process)
        self.log.close()
