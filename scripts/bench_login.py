"""The login as a CPU lever: how slow the API gets while a crowd guesses passwords.

A password check costs about 0.6 s of CPU (PBKDF2). Guessers POST /api/v1/auth/token with
random usernames from random addresses (X-Forwarded-For behind one trusted proxy), so the
per-username and per-address records do not stop them: only the bound on hashing at once
does. Meanwhile a probe times GET /api/v1/bench/bare (the middleware and a JSON answer).
Runs the server twice: LOGIN_HASH_CONCURRENCY=1 (the default) and 64 (as good as unbounded,
as before). Own redis-server, database flashsale_bench, Celery broker memory://, like
scripts/bench. Prints figures; never part of the test suite.

    .venv/bin/python scripts/bench_login.py [--seconds 10] [--guessers 16]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lib.bench import (  # noqa: E402
    Server,
    bench_environment,
    log,
    prepare_database,
    start_redis,
)


def probe(port: int, seconds: float) -> list[float]:
    latencies = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            client.get("/api/v1/bench/bare")
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)
    return latencies


def guess(port: int, stop: threading.Event, statuses: Counter) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        while not stop.is_set():
            address = ".".join(str(random.randint(1, 254)) for _ in range(4))
            response = client.post(
                "/api/v1/auth/token",
                json={"username": f"nobody-{random.getrandbits(40)}", "password": "guess"},
                headers={"X-Forwarded-For": address},
            )
            statuses[response.status_code] += 1


def figures(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (
        f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms ({len(ordered)} requests)"
    )


def run(args, env, concurrency: int) -> None:
    server = Server(
        args,
        env,
        "flashsale.wsgi:application",
        args.port,
        extra_env={"LOGIN_HASH_CONCURRENCY": str(concurrency), "TRUSTED_PROXY_COUNT": "1"},
    )
    try:
        server.wait("/healthz")
        quiet = probe(args.port, 3)
        stop, statuses = threading.Event(), Counter()
        guessers = [
            threading.Thread(target=guess, args=(args.port, stop, statuses))
            for _ in range(args.guessers)
        ]
        for thread in guessers:
            thread.start()
        time.sleep(1)  # the guessers fill the server
        busy = probe(args.port, args.seconds)
        stop.set()
        for thread in guessers:
            thread.join()
        log(f"LOGIN_HASH_CONCURRENCY={concurrency}")
        print(f"  API alone:                 {figures(quiet)}")
        print(f"  API with {args.guessers} guessers:     {figures(busy)}")
        print(f"  guesses answered: {dict(sorted(statuses.items()))}", flush=True)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--guessers", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--blocking-threads", type=int, default=32)
    parser.add_argument("--backpressure", type=int, default=64)
    parser.add_argument("--port", type=int, default=18120)
    parser.add_argument("--redis-port", type=int, default=16393)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flashsale_bench"
        ),
    )
    args = parser.parse_args()
    args.server_cpus = args.redis_cpus = None
    args.workdir = Path(tempfile.mkdtemp(prefix="flashsale-bench-login-"))
    env = bench_environment(args)
    redis_process = start_redis(args, args.workdir)
    try:
        prepare_database(env)
        for concurrency in (1, 64):
            run(args, env, concurrency)
    finally:
        redis_process.kill()
        redis_process.wait()


if __name__ == "__main__":
    main()
