"""scripts/cluster: N web nodes + M ws nodes behind nginx (apps/core/testing/fleet.py).

--bench N1,N2,...: for each N, a fleet of N web nodes (one granian worker each: a node is one
process here, as it would be one container), then wrk through nginx on
  list     GET /api/v1/flash_sales/   (a read served from the Redis cache)
  soldout  POST purchase of a sold-out sale (the hot refusal path: Redis only)
and prints requests/s, p50 and p99 per N, as a markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.core.testing.fleet import fleet_start  # noqa: E402

WRK_POST = """
wrk.method = "POST"
wrk.body = '{"quantity": 1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.headers["X-Idempotency-Key"] = "bench-soldout"
"""


def node_env() -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "flashsale.settings.base",
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flashsale"
        ),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_KEY_PREFIX": os.environ.get("REDIS_KEY_PREFIX", "fleet:"),
        "DEBUG": os.environ.get("DEBUG", "1"),
        "LOG_LEVEL": "WARNING",
        "TRUSTED_PROXY_COUNT": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name in ("SECRET_KEY", "JWT_KEYS", "REDIS_CLUSTER_NODES", "DATABASE_REPLICA_URL"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def prepare(env: dict[str, str]) -> tuple[str, str]:
    """Migrate, then a sold-out sale and an admission to it (for the refusal path)."""
    subprocess.run(
        [sys.executable, "scripts/ensure_database.py"], cwd=ROOT, env={**os.environ, **env}
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    sale_id = manage(
        env,
        "create_flash_sale",
        "--product",
        "Fleet bench",
        "--inventory",
        "1",
        "--starts-in",
        "0s",
        "--duration",
        "2h",
        "--pow-difficulty",
        "0",
    ).split()[-1]
    code = (
        "import django; django.setup();"
        "from django.contrib.auth import get_user_model;"
        "from apps.waiting_room.tokens import admission_token_issue;"
        "from apps.orders.services import order_reserve;"
        "from apps.sales.selectors import sale_snapshot;"
        "U = get_user_model();"
        "u, _ = U.objects.get_or_create(username='fleet-bench');"
        "v, _ = U.objects.get_or_create(username='fleet-bench-2');"
        f"order_reserve(sale=sale_snapshot('{sale_id}'), user_id=v.id, quantity=1,"
        f" idempotency_key='fleet-sellout-{sale_id}');"
        f"print(admission_token_issue(user_id=u.id, sale_id='{sale_id}',"
        " lifetime_seconds=7200)[0])"
    )
    token = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    return sale_id, token


def wrk(url: str, *, duration: int, connections: int, script: str | None = None) -> dict:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        path = Path(tempfile.mkstemp(suffix=".lua")[1])
        path.write_text(script)
        argv += ["-s", str(path)]
    out = subprocess.run([*argv, url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def latency(pct: str) -> str:
        match = re.search(rf"\s{pct}%\s+([\d.]+\w+)", out)
        return match.group(1) if match else "?"

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": latency("50"),
        "p99": latency("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def bench(args) -> None:
    env = node_env() | {"RATELIMIT_ENABLE": "0", "SOLD_OUT_MEMORY_SECONDS": "0"}
    sale_id, token = prepare(env)
    rows = []
    for nodes in [int(n) for n in args.bench.split(",")]:
        # One address sends everything: the per-address limits would only measure themselves.
        fleet = fleet_start(
            env=env, web_nodes=nodes, ws_nodes=1, threads=args.threads, per_address_limits=False
        )
        try:
            wrk(f"{fleet.url}/api/v1/flash_sales/", duration=2, connections=16)  # warm up
            listing = wrk(
                f"{fleet.url}/api/v1/flash_sales/",
                duration=args.duration,
                connections=args.connections,
            )
            soldout = wrk(
                f"{fleet.url}/api/v1/flash_sales/{sale_id}/purchase",
                duration=args.duration,
                connections=args.connections,
                script=WRK_POST % token,
            )
        finally:
            fleet.stop()
        rows.append((nodes, listing, soldout))
        print(f"N={nodes}: list {listing}  soldout {soldout}", flush=True)
    print(f"\n{os.cpu_count()} CPUs; wrk -t2 -c{args.connections} -d{args.duration}s via nginx\n")
    print("| web nodes | list req/s | list p50 / p99 | sold-out req/s | sold-out p50 / p99 |")
    print("| --- | --- | --- | --- | --- |")
    for nodes, listing, soldout in rows:
        print(
            f"| {nodes} | {listing['rps']:.0f} | {listing['p50']} / {listing['p99']} | "
            f"{soldout['rps']:.0f} | {soldout['p50']} / {soldout['p99']} |"
        )


def serve(args) -> None:
    env = node_env()
    fleet = fleet_start(env=env, web_nodes=args.web, ws_nodes=args.ws, threads=args.threads)
    print(f"nginx: {fleet.url}  web nodes: {sorted(fleet.web)}  ws nodes: {sorted(fleet.ws)}")
    print("Ctrl-C stops every process.", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--web", type=int, default=2, help="web nodes")
    parser.add_argument("--ws", type=int, default=1, help="ws nodes")
    parser.add_argument("--threads", type=int, default=8, help="blocking threads per node")
    parser.add_argument("--bench", default="", help="comma-separated node counts, e.g. 1,2,4")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    bench(args) if args.bench else serve(args)


if __name__ == "__main__":
    main()
