"""A throwaway redis-server on loopback (no persistence) for tests, chaos runs and benches
that must flush, kill or restart Redis without touching the machine's shared one."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence


def redis_server_start(
    *,
    port: int,
    workdir: str,
    extra_args: Sequence[str] = (),
    prefix: Sequence[str] = (),
    wait_seconds: float = 5.0,
) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:``port`` and return once it answers PING."""
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(
        [
            *prefix,
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            if process.poll() is not None:
                break
            time.sleep(0.025)
    process.kill()
    raise RuntimeError(f"redis-server did not start on port {port}")
