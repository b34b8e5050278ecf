"""CPU cost per request, in process: the WSGI application called directly (no server, no
network), one thread, timed with time.thread_time() so other processes on a busy machine do
not count. The Python-side cost of each path, and a cProfile breakdown of the costliest calls.

    .venv/bin/python scripts/bench_lib/cpu_cost.py [--profile soldout] [-n 2000]

Uses the bench's isolation (own redis-server, flashsale_bench database)."""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench_lib import bench  # noqa: E402


def environ(method, path, body=b"", headers=None):
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
    }
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def install_counters() -> dict:
    """Count, per request, what costs a round trip or a token check (measurement only):
    Redis round trips and Lua calls, SQL statements and commits, JWT signature checks."""
    from collections import Counter

    import redis.connection
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper

    counts: Counter = Counter()

    def wrap(owner, attr, label, when=None):
        original = getattr(owner, attr)

        def counted(*a, **k):
            if when is None or when(*a, **k):
                counts[label] += 1
            return original(*a, **k)

        setattr(owner, attr, counted)

    wrap(redis.connection.AbstractConnection, "send_packed_command", "redis_round_trips")
    wrap(
        redis.connection.AbstractConnection,
        "send_command",
        "lua_calls",
        when=lambda self, *a, **k: bool(a) and str(a[0]).upper() in ("EVALSHA", "EVAL"),
    )
    wrap(CursorWrapper, "execute", "sql_statements")
    wrap(BaseDatabaseWrapper, "commit", "sql_commits")
    return counts


def install_experiment(name: str) -> None:
    """What-if measurements for the report (never in the app):
    blocklist-memory the block list answered from process memory (no Redis round trip)"""
    if "blocklist-memory" in name:
        from apps.protection import blocklist

        blocklist.is_blocked = lambda **_: None
        import apps.protection.services as protection_services

        protection_services.is_blocked = blocklist.is_blocked


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--profile", default="", help="scenario to break down with cProfile")
    parser.add_argument("--redis-port", type=int, default=16392)
    parser.add_argument("--experiment", default="", help="blocklist-memory (what-if)")
    parser.add_argument("--only", default="", help="comma-separated scenarios")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/flashsale_bench"
    )
    args = parser.parse_args()
    args.workdir = Path(bench.tempfile.mkdtemp(prefix="flashsale-cpu-"))
    args.redis_cpus = None
    env = bench.bench_environment(args)
    redis_process = bench.start_redis(args, args.workdir)
    try:
        bench.prepare_database(env)
        bench.django_setup(env)
        from flashsale.wsgi import application

        n = args.n
        user_ids, user_tokens = bench.shoppers_ready(max(50000, 3 * n), args.workdir)
        statuses = {}

        def call(env_):
            out = {}

            def start_response(status, headers, exc_info=None):
                out["status"] = status.split()[0]

            body = application(env_, start_response)
            b"".join(body)
            if hasattr(body, "close"):
                body.close()
            return out["status"]

        def purchase(sale_id, token, path="/api/v1/flash_sales/{}/purchase"):
            return environ(
                "POST",
                path.format(sale_id),
                b'{"quantity": 1}',
                {"Authorization": f"Bearer {token}", "X-Idempotency-Key": uuid.uuid4().hex},
            )

        scenarios = {}
        scenarios["bare"] = lambda i: environ("GET", "/api/v1/bench/bare")
        sold = bench.sale_new(1)
        bench.sell_out(sold, user_ids[-1])
        sold_tokens = bench.purchase_credentials(user_ids[:n], user_tokens[:n], sold)
        scenarios["soldout"] = lambda i: purchase(sold, sold_tokens[i])
        res = bench.sale_new(n + 10)
        res_tokens = bench.purchase_credentials(user_ids[n : 2 * n], user_tokens[n : 2 * n], res)
        scenarios["reserve"] = lambda i: purchase(res, res_tokens[i])
        row = bench.sale_new(n + 10)
        scenarios["rowlock"] = lambda i: purchase(
            row, user_tokens[2 * n + i], "/api/v1/bench/flash_sales/{}/purchase_rowlock"
        )
        room = bench.sale_new(10)
        paths = bench.waiting_room_paths(room)
        if paths:
            scenarios["join"] = lambda i: environ(
                "POST", paths[0], b"{}", {"Authorization": f"Bearer {user_tokens[i]}"}
            )
            scenarios["position"] = lambda i: environ(
                "GET", paths[1], b"", {"Authorization": f"Bearer {user_tokens[i]}"}
            )
        counters = install_counters()
        if args.experiment:
            install_experiment(args.experiment)
        if args.only:
            scenarios = {k: v for k, v in scenarios.items() if k in args.only.split(",")}
        for name, make in scenarios.items():
            for i in range(min(50, n)):  # warm the process (imports, connections, scripts)
                call(
                    make(n - 1 - i) if name in ("bare", "join", "position", "soldout") else make(i)
                )
            start = 50 if name not in ("bare", "join", "position", "soldout") else 0
            requests = [make(i) for i in range(start, n)]
            profiler = cProfile.Profile() if name == args.profile else None
            codes = {}
            counters.clear()
            t0 = time.thread_time()
            w0 = time.perf_counter()
            if profiler:
                profiler.enable()
            for env_ in requests:
                code = call(env_)
                codes[code] = codes.get(code, 0) + 1
            if profiler:
                profiler.disable()
            cpu = (time.thread_time() - t0) / len(requests)
            wall = (time.perf_counter() - w0) / len(requests)
            statuses[name] = codes
            per = {k: v / len(requests) for k, v in sorted(counters.items())}
            print(
                f"{name:<10} {cpu * 1e6:8.0f} us CPU/request ({1 / cpu:7.0f}/s per core), "
                f"{wall * 1e6:8.0f} us wall, {codes}",
                flush=True,
            )
            print(
                "           per request: " + ", ".join(f"{k} {v:.2f}" for k, v in per.items()),
                flush=True,
            )
            if profiler:
                stream = io.StringIO()
                pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(45)
                print(stream.getvalue())
    finally:
        redis_process.kill()
        redis_process.wait()


if __name__ == "__main__":
    main()
