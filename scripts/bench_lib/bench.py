"""scripts/bench: every throughput figure of issue 6, in one run, on the same server settings.

Scenarios (each repeated --reps times; medians reported, spread shown):
  bare          GET a JSON view behind the same server and middleware as the API
  bare_redis    bare plus one rate-limit script call: the floor of a refusal asking Redis once
  bare_post     bare asked the way a purchase is (POST, its body, Bearer token, idempotency key)
  soldout       purchases refused as sold out
  reserve       purchases that succeed (unique shoppers, ample stock; each writes PostgreSQL)
  join/position the waiting room (when apps/waiting_room provides the endpoints)
  page          GET the sale page as an anonymous shopper sees it (no cookies)
  now_serving   GET the public now_serving figure the waiting pages follow (no token)
  rowlock       the same purchase done with SELECT ... FOR UPDATE in PostgreSQL, no Redis
  mix           10,000 units, 100,000 attempts from 50,000 shoppers; exactly 10,000 sold
  raw_lua_wsgi  framework-free WSGI app running the same reserve.lua, same server, same load
  redis_lua     redis-benchmark running reserve.lua (the physical limit)
  ws            the ws process broadcasting to 1,000/5,000/10,000 sockets at 4 Hz (ws_bench.py)

Isolation: a redis-server of the bench's own (port --redis-port, no persistence), its own
PostgreSQL database (BENCH_DATABASE_URL, default flashsale_bench on the shared server), the
Celery broker set to memory:// so nothing reaches the shared RabbitMQ. It never touches
the shared Redis or the development database.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import ws_bench  # the ws scenario (this directory is on sys.path: the script's own)

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apps.core.testing.processes import process_stop  # noqa: E402

LIB = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
WRK_SCRIPT = LIB / "wrk_bench.lua"
RESERVE_LUA = ROOT / "apps" / "inventory" / "lua" / "reserve.lua"

ALL = [
    "bare",
    "bare_redis",
    "bare_post",
    "soldout",
    "reserve",
    "soldout_plain",
    "reserve_plain",
    "join",
    "position",
    "page",
    "now_serving",
    "rowlock",
    "mix",
    "raw_lua_wsgi",
    "redis_lua",
    "ws",
]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------- environment
def bench_environment(args) -> dict:
    env = dict(os.environ)
    env.update(
        # The production settings plus the bench-only views (scripts/bench_lib/urls.py).
        DJANGO_SETTINGS_MODULE="scripts.bench_lib.settings",
        DATABASE_URL=args.database_url,
        REDIS_URL=f"redis://127.0.0.1:{args.redis_port}/0",
        REDIS_KEY_PREFIX="bench:",
        RATELIMIT_ENABLE="0",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        CELERY_BROKER_URL="memory://",
        CONN_MAX_AGE="600",
        PYTHONDONTWRITEBYTECODE="1",
        # Metrics as in production: every worker writes its own files, /metrics adds them up.
        PROMETHEUS_MULTIPROC_DIR=str(args.workdir / "metrics"),
    )
    (args.workdir / "metrics").mkdir(exist_ok=True)
    # DEBUG off (as in production) needs a long secret; the bench's own unless one is set.
    if len(env.get("SECRET_KEY", "")) < 50:
        env["SECRET_KEY"] = "bench-only-secret-x7Kq2mP9vR4tW8yZ3nB6cD1fG5hJ0lA-e5Ts8uVw"
    return env


def taskset(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


def start_redis(args, workdir: Path) -> subprocess.Popen:
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", args.redis_port)) == 0:
            sys.exit(f"port {args.redis_port} is taken; pick another with --redis-port")
    sys.path.insert(0, str(ROOT))
    from apps.core.testing.redis_server import redis_server_start

    try:
        return redis_server_start(
            port=args.redis_port,
            workdir=str(workdir),
            prefix=taskset(args.redis_cpus),
            extra_args=["--maxclients", "4096", "--protected-mode", "no"],
        )
    except RuntimeError as exc:
        sys.exit(str(exc))


class Server:
    """granian with the Procfile's settings (overridable), pinned with taskset."""

    def __init__(self, args, env, app: str, port: int, extra_env: dict | None = None):
        self.args, self.port = args, port
        command = [
            *taskset(args.server_cpus),
            str(VENV_BIN / "granian"),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--blocking-threads",
            str(args.blocking_threads),
            "--backpressure",
            str(args.backpressure),
            "--log-level",
            "warning",
            "--no-access-log",
            app,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=str(ROOT),
            env={**env, **(extra_env or {})},
            stdout=subprocess.DEVNULL,
            stderr=open(args.workdir / f"server-{port}.log", "w"),  # noqa: SIM115
            start_new_session=True,
        )

    def wait(self, path: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_text = (self.args.workdir / f"server-{self.port}.log").read_text()
                sys.exit(f"server exited:\n{log_text[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2):
                    return
            except OSError as exc:
                if getattr(exc, "code", None):  # an HTTP error: the server answers
                    return
                time.sleep(0.2)
        sys.exit("server did not start")

    def stop(self) -> None:
        process_stop(self.process)  # the whole group: its workers too


# ---------------------------------------------------------------------------- wrk runs
def run_wrk(
    args,
    port: int,
    *,
    path: str,
    method: str = "GET",
    body: str = "",
    tokens: Path | None = None,
    auth: str = "none",
    quota: int = 0,
    duration: int | None = None,
    tag: str = "",
) -> dict:
    done_dir = Path(tempfile.mkdtemp(prefix="done-", dir=args.workdir))
    env = dict(os.environ)
    env.update(
        BENCH_METHOD=method,
        BENCH_PATH=path,
        BENCH_BODY=body,
        BENCH_AUTH=auth,
        BENCH_TOKENS=str(tokens or ""),
        BENCH_THREADS=str(args.threads),
        BENCH_QUOTA=str(quota),
        BENCH_DONE_DIR=str(done_dir),
        BENCH_TAG=tag or uuid.uuid4().hex[:10],
    )
    seconds = duration or (args.max_seconds if quota else args.duration)
    command = [
        *taskset(args.wrk_cpus),
        args.wrk,
        "-t",
        str(args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if quota:
        while process.poll() is None:
            if len(list(done_dir.iterdir())) >= args.threads:
                process.send_signal(signal.SIGINT)
                break
            time.sleep(0.02)
    out, err = process.communicate()
    shutil.rmtree(done_dir, ignore_errors=True)
    line = next((x for x in out.splitlines() if x.startswith("BENCHJSON ")), None)
    if line is None:
        sys.exit(f"wrk produced no result:\n{out}\n{err}")
    result = json.loads(line[len("BENCHJSON ") :])
    span = max(1, result["last_us"] - result["first_us"]) / 1e6
    result["seconds"] = span
    result["rps"] = result["responses"] / span
    result["p50_ms"] = result["p50_us"] / 1000
    result["p99_ms"] = result["p99_us"] / 1000
    return result


# ---------------------------------------------------------------------------- fixtures
def django_setup(env) -> None:
    os.environ.update(
        {
            k: v
            for k, v in env.items()
            if k not in os.environ
            or k
            in (
                "DJANGO_SETTINGS_MODULE",
                "DATABASE_URL",
                "REDIS_URL",
                "REDIS_KEY_PREFIX",
                "RATELIMIT_ENABLE",
                "DEBUG",
                "LOG_LEVEL",
                "CELERY_BROKER_URL",
            )
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare_database(env) -> None:
    subprocess.run([sys.executable, "scripts/ensure_database.py"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def shoppers_ready(count: int, workdir: Path) -> tuple[list[int], list[str]]:
    """``count`` shopper accounts through the real command; their ids and bearer tokens."""
    import csv

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    out = workdir / "shoppers.csv"
    call_command("create_shoppers", count, prefix="bench", out=str(out))
    with open(out) as f:
        rows = list(csv.DictReader(f))
    ids = dict(
        get_user_model().objects.filter(username__startswith="bench").values_list("username", "id")
    )
    return [ids[r["username"]] for r in rows], [r["token"] for r in rows]


def purchase_credentials(user_ids: list[int], user_tokens: list[str], sale_id: str) -> list[str]:
    """What a shopper sends as Bearer on the purchase: the admission token when the waiting
    room issues them (apps.waiting_room.tokens), else the shopper token."""
    try:
        from apps.waiting_room.tokens import admission_token_issue
    except ImportError:
        return list(user_tokens)
    return [
        admission_token_issue(user_id=uid, sale_id=sale_id, lifetime_seconds=3600)[0]
        for uid in user_ids
    ]


def write_lines(path: Path, lines) -> Path:
    path.write_text("\n".join(str(x) for x in lines) + "\n")
    return path


def sale_new(inventory: int, *, max_per_user: int = 1, name: str = "Bench drop") -> str:
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from apps.sales.services import product_get_or_create, sale_create, sale_publish

    start = timezone.now() - timedelta(seconds=5)
    options = {}
    from apps.sales.models import FlashSale

    field_names = {f.name for f in FlashSale._meta.get_fields()}
    if "pow_difficulty" in field_names:
        options["pow_difficulty"] = 0
    sale = sale_create(
        product=product_get_or_create(name=name),
        price=Decimal("49.00"),
        total_inventory=inventory,
        start_time=start,
        end_time=start + timedelta(hours=2),
        max_per_user=max_per_user,
        title=f"bench {uuid.uuid4().hex[:6]}",
        **options,
    )
    sale_publish(sale_id=sale.id)
    return str(sale.id)


def sale_counts(sale_id: str) -> dict:
    from apps.inventory.models import Unit
    from apps.orders.models import Order

    return {
        "orders": Order.objects.filter(sale_id=sale_id).count(),
        "units_taken": Unit.objects.filter(sale_id=sale_id, order__isnull=False).count(),
    }


def sale_audit_verdict(sale_id: str) -> tuple[bool, str]:
    from apps.inventory.audit import sale_audit

    report = sale_audit(sale_id=sale_id)
    return report.clean, report.render()


# ---------------------------------------------------------------------------- scenarios
PURCHASE_BODY = '{"quantity": 1}'


def scenario_bare(ctx, rep):
    return run_wrk(ctx.args, ctx.port, path="/api/v1/bench/bare")


def scenario_bare_redis(ctx, rep):
    """bare plus one sliding-window script call: the floor of a refusal asking Redis once."""
    return run_wrk(ctx.args, ctx.port, path="/api/v1/bench/bare_redis")


def scenario_bare_post(ctx, rep):
    """bare asked with a purchase's method, body and headers: what the request's size alone
    costs the server and wrk, the floor of any purchase answer."""
    tokens = ctx.tokens_file("bare_post", sale_new(1), 1, 5000)
    return run_wrk(
        ctx.args,
        ctx.port,
        path="/api/v1/bench/bare",
        method="POST",
        body=PURCHASE_BODY,
        tokens=tokens,
        auth="bearer",
    )


def sell_out(sale_id: str, user_id: int) -> None:
    """Take a one-unit sale's only unit through the real service."""
    from apps.orders.services import order_reserve
    from apps.sales.selectors import sale_snapshot

    order_reserve(
        sale=sale_snapshot(sale_id), user_id=user_id, quantity=1, idempotency_key=uuid.uuid4().hex
    )


def scenario_soldout(ctx, rep):
    sale_id = sale_new(1)
    sell_out(sale_id, ctx.user_ids[-1])
    tokens = ctx.tokens_file("soldout", sale_id, 1, 5000)
    return run_wrk(
        ctx.args,
        ctx.port,
        path=f"/api/v1/flash_sales/{sale_id}/purchase",
        method="POST",
        body=PURCHASE_BODY,
        tokens=tokens,
        auth="bearer",
    )


def scenario_reserve(ctx, rep):
    n = ctx.args.reserve_attempts
    sale_id = sale_new(n + 1000)
    tokens = ctx.tokens_file("reserve", sale_id, 0, n + ctx.args.connections)  # all unique
    result = run_wrk(
        ctx.args,
        ctx.port,
        path=f"/api/v1/flash_sales/{sale_id}/purchase",
        method="POST",
        body=PURCHASE_BODY,
        tokens=tokens,
        auth="bearer",
        quota=n,
    )
    result.update(sale_counts(sale_id))
    return result


def without_observability(scenario):
    """The same scenario against the server started with metrics, request ids and tracing
    switched off (OBSERVABILITY=0), warm like the main one: the ratio is what they cost."""

    def run(ctx, rep):
        plain = copy.copy(ctx)
        plain.port = ctx.args.port + 2
        return scenario(plain, rep)

    return run


def scenario_rowlock(ctx, rep):
    n = ctx.args.rowlock_attempts
    sale_id = sale_new(n + 1000)
    tokens = ctx.tokens_file("rowlock", sale_id, 0, n + ctx.args.connections, admission=False)
    result = run_wrk(
        ctx.args,
        ctx.port,
        path=f"/api/v1/bench/flash_sales/{sale_id}/purchase_rowlock",
        method="POST",
        body=PURCHASE_BODY,
        tokens=tokens,
        auth="bearer",
        quota=n,
    )
    result.update(sale_counts(sale_id))
    return result


def scenario_mix(ctx, rep):
    args = ctx.args
    sale_id = sale_new(args.mix_units)
    tokens = ctx.tokens_file("mix", sale_id, 0, args.mix_shoppers)
    result = run_wrk(
        args,
        ctx.port,
        path=f"/api/v1/flash_sales/{sale_id}/purchase",
        method="POST",
        body=PURCHASE_BODY,
        tokens=tokens,
        auth="bearer",
        quota=args.mix_attempts,
    )
    result.update(sale_counts(sale_id))
    result["sold"] = result["units_taken"]
    result["sellout_s"] = (result["last_created_us"] - result["first_us"]) / 1e6
    clean, report = sale_audit_verdict(sale_id)
    result["audit_clean"] = clean
    if not clean:
        log(report)
    return result


def waiting_room_paths(sale_id: str) -> tuple[str, str] | None:
    """(join path, position path) when the waiting room's URLs exist."""
    from django.urls import NoReverseMatch, reverse

    for join_name, position_name in (
        ("waiting-room-join", "waiting-room-position"),
        ("join", "position"),
        ("queue-join", "queue-position"),
    ):
        try:
            return (
                reverse(join_name, kwargs={"sale_id": sale_id}),
                reverse(position_name, kwargs={"sale_id": sale_id}),
            )
        except NoReverseMatch:
            continue
    return None


def scenario_join(ctx, rep):
    sale_id = sale_new(1000)
    paths = waiting_room_paths(sale_id)
    if paths is None:
        return None
    tokens = ctx.tokens_file("join", sale_id, 0, 50000, admission=False)
    return run_wrk(
        ctx.args, ctx.port, path=paths[0], method="POST", body="{}", tokens=tokens, auth="bearer"
    )


def scenario_position(ctx, rep):
    sale_id = sale_new(1000)
    paths = waiting_room_paths(sale_id)
    if paths is None:
        return None
    tokens = ctx.tokens_file("position", sale_id, 0, 2000, admission=False)
    # everyone joins once, then asks for their position
    run_wrk(
        ctx.args,
        ctx.port,
        path=paths[0],
        method="POST",
        body="{}",
        tokens=tokens,
        auth="bearer",
        quota=2000,
    )
    return run_wrk(ctx.args, ctx.port, path=paths[1], tokens=tokens, auth="bearer")


def scenario_page(ctx, rep):
    """The sale page as every anonymous shopper of the herd asks for it."""
    from django.urls import reverse

    sale_id = sale_new(1000)
    return run_wrk(ctx.args, ctx.port, path=reverse("sale-page", kwargs={"sale_id": sale_id}))


def scenario_now_serving(ctx, rep):
    """The public figure that replaced the position poll (waiting pages compute their place
    from their rank and this; /position is asked only when the turn has come)."""
    from django.urls import reverse

    sale_id = sale_new(1000)
    path = reverse("waiting-room-now-serving", kwargs={"sale_id": sale_id})
    return run_wrk(ctx.args, ctx.port, path=path)


def scenario_raw_lua_wsgi(ctx, rep):
    """The mix's workload (10,000 units, 100,000 attempts, 50,000 shoppers) against the
    framework-free app: a pool primed in Redis like inventory_rebuild does."""
    import redis

    args = ctx.args
    client = redis.Redis(port=args.redis_port)
    prefix = f"bench:raw:{{sale:{uuid.uuid4().hex}}}:"
    for start in range(0, args.mix_units, 5000):
        client.sadd(prefix + "free", *range(start, min(args.mix_units, start + 5000)))
    client.set(prefix + "primed", "1")
    env = {"RAW_REDIS_URL": f"redis://127.0.0.1:{args.redis_port}/0", "RAW_KEY_PREFIX": prefix}
    server = Server(
        args, ctx.env, "scripts.bench_lib.raw_lua_wsgi:application", args.port + 1, extra_env=env
    )
    try:
        server.wait("/")
        ids = write_lines(args.workdir / "raw_ids.txt", ctx.user_ids[: args.mix_shoppers])
        result = run_wrk(
            args,
            server.port,
            path="/purchase",
            method="POST",
            body=PURCHASE_BODY,
            tokens=ids,
            auth="xuser",
            quota=args.mix_attempts,
        )
    finally:
        server.stop()
    result["sold"] = args.mix_units - client.scard(prefix + "free")
    client.flushdb()  # the bench's own redis-server; the API server is stopped by now
    return result


def scenario_redis_lua(ctx, rep):
    """redis-benchmark calling reserve.lua by SHA, every call a successful reservation (the
    costliest path): SPOP, HINCRBY, ZADD, HSET, SET of a fresh idempotency record."""
    import redis

    args = ctx.args
    client = redis.Redis(port=args.redis_port)
    n = args.redis_calls
    prefix = f"bench:rl:{{sale:{uuid.uuid4().hex}}}:"
    for start in range(0, n + 10000, 10000):
        client.sadd(prefix + "free", *range(start, start + 10000))
    client.set(prefix + "primed", "1")
    sha = client.script_load(RESERVE_LUA.read_text())
    binary = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
    command = [
        *taskset(args.wrk_cpus),
        binary,
        "-p",
        str(args.redis_port),
        "-c",
        "50",
        "-n",
        str(n),
        "-r",
        "100000000",
        "--csv",
        "EVALSHA",
        sha,
        "9",
        prefix + "free",
        prefix + "primed",
        prefix + "buyers",
        prefix + "idem:__rand_int__",
        prefix + "inflight",
        prefix + "pending",
        prefix + "adm:__rand_int__",
        prefix + "holders",
        prefix + "restock",
        "__rand_int__",
        "1",
        "1",
        "fp",
        "86400",
        "0",
        str(2**52),
        "o-__rand_int__",
        "j-__rand_int__",
        "900",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    # the bench's own redis-server: drop the 400,000 records this run wrote in one go
    client.flushdb()
    row = [line for line in out.splitlines() if line.startswith('"EVALSHA')][-1]
    fields = [x.strip('"') for x in row.split(",")]
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
    # "p99_latency_ms","max_latency_ms"
    return {
        "rps": float(fields[1]),
        "p50_ms": float(fields[4]),
        "p99_ms": float(fields[6]),
        "responses": n,
        "statuses": {},
    }


def serve_forever(args, ctx) -> None:
    sale_id = sale_new(args.mix_units)
    print(f"server http://127.0.0.1:{args.port}  redis port {args.redis_port}", flush=True)
    print(f"sale {sale_id}", flush=True)
    print(f"token {ctx.user_tokens[0]}", flush=True)
    print(f"tokens file {ctx.tokens_file('serve', sale_id, 0, args.mix_shoppers)}", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass


SCENARIOS = {
    "bare": scenario_bare,
    "bare_redis": scenario_bare_redis,
    "bare_post": scenario_bare_post,
    "soldout": scenario_soldout,
    "reserve": scenario_reserve,
    "soldout_plain": without_observability(scenario_soldout),
    "reserve_plain": without_observability(scenario_reserve),
    "join": scenario_join,
    "position": scenario_position,
    "page": scenario_page,
    "now_serving": scenario_now_serving,
    "rowlock": scenario_rowlock,
    "mix": scenario_mix,
    "raw_lua_wsgi": scenario_raw_lua_wsgi,
    "redis_lua": scenario_redis_lua,
    "ws": lambda ctx, rep: ws_bench.scenario(ctx, rep, sale_new),  # ws_bench.py
}


class Context:
    def __init__(self, args, env, user_ids, user_tokens):
        self.args, self.env = args, env
        self.port = args.port
        self.user_ids, self.user_tokens = user_ids, user_tokens

    def tokens_file(self, name, sale_id, start, count, admission=True) -> Path:
        ids = self.user_ids[start : start + count]
        toks = self.user_tokens[start : start + count]
        lines = purchase_credentials(ids, toks, sale_id) if admission else toks
        return write_lines(self.args.workdir / f"tokens-{name}.txt", lines)


# ---------------------------------------------------------------------------- report
def machine() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "load_before": os.getloadavg(),
    }


def summarise(results: dict) -> dict:
    summary = {}
    for name, reps in results.items():
        reps = [r for r in reps if r]
        if not reps:
            continue
        rps = [r["rps"] for r in reps]
        entry = {
            "rps": statistics.median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p50_ms": statistics.median(r["p50_ms"] for r in reps),
            "p99_ms": statistics.median(r["p99_ms"] for r in reps),
            "reps": len(reps),
        }
        if name in ("mix", "raw_lua_wsgi"):
            entry["sold"] = [r.get("sold") for r in reps]
        if name == "mix":
            entry["sellout_s"] = statistics.median(r["sellout_s"] for r in reps)
            entry["audit_clean"] = all(r.get("audit_clean") for r in reps)
        statuses = {}
        for r in reps:
            for code, count in r.get("statuses", {}).items():
                statuses[code] = statuses.get(code, 0) + count
        entry["statuses"] = statuses
        errors = {}
        for r in reps:
            for kind, count in (r.get("errors") or {}).items():
                if count:
                    errors[kind] = errors.get(kind, 0) + count
        entry["socket_errors"] = errors
        summary[name] = entry
    return summary


def report(args, summary: dict, info: dict) -> None:
    print()
    print(
        f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, "
        f"load before {info['load_before'][0]:.2f}"
    )
    print(
        f"server: granian wsgi --workers {args.workers} --blocking-threads "
        f"{args.blocking_threads} --backpressure {args.backpressure} on cpus "
        f"{args.server_cpus or 'any'}; wrk -t{args.threads} -c{args.connections} on cpus "
        f"{args.wrk_cpus or 'any'}; {args.reps} repetition(s)"
    )
    print(
        f"{'scenario':<14}{'req/s':>10}{'min':>10}{'max':>10}{'p50 ms':>9}{'p99 ms':>9}  statuses"
    )
    for name in ALL:
        if name not in summary:
            print(f"{name:<14}{'n/a':>10}")
            continue
        s = summary[name]
        print(
            f"{name:<14}{s['rps']:>10.0f}{s['rps_min']:>10.0f}{s['rps_max']:>10.0f}"
            f"{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}  {s['statuses']} {s['socket_errors'] or ''}"
        )
    if "mix" in summary:
        m = summary["mix"]
        print(
            f"mix: sold {m['sold']} per repetition, sell-out after {m['sellout_s']:.2f} s "
            f"(median), audit {'clean' if m['audit_clean'] else 'NOT CLEAN'}"
        )
    print()

    def rps(name):
        return summary.get(name, {}).get("rps")

    for name in (
        "bare",
        "bare_redis",
        "bare_post",
        "soldout",
        "reserve",
        "join",
        "position",
        "page",
        "now_serving",
        "rowlock",
        "mix",
    ):
        if rps(name) is not None:
            print(f"rps {name} {rps(name):.0f}")
    if "mix" in summary:
        print(f"p99_ms mix {summary['mix']['p99_ms']:.1f}")
    if "reserve" in summary:
        print(f"p99_ms reserve {summary['reserve']['p99_ms']:.1f}")
    if "mix" in summary:
        print(f"sold mix {int(statistics.median(summary['mix']['sold']))}")
    for name in ("raw_lua_wsgi", "redis_lua"):
        if rps(name) is not None:
            print(f"rps {name} {rps(name):.0f}")
    for a, b in (
        ("bare_redis", "bare"),
        ("bare_post", "bare"),
        ("soldout", "bare"),
        ("soldout", "bare_post"),
        ("reserve", "rowlock"),
        ("reserve", "raw_lua_wsgi"),
        ("mix", "raw_lua_wsgi"),
        ("join", "bare"),
        ("position", "bare"),
        ("page", "bare"),
        ("now_serving", "bare"),
    ):
        if rps(a) and rps(b):
            print(f"ratio {a}/{b} {rps(a) / rps(b):.2f}")
    # Observability on (the default) against off, in the same run.
    for name in ("soldout", "reserve"):
        if rps(name) and rps(f"{name}_plain"):
            cost = 1 - rps(name) / rps(f"{name}_plain")
            print(f"ratio {name}/{name}_plain {rps(name) / rps(f'{name}_plain'):.3f}")
            print(f"observability_cost {name} {cost * 100:.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated scenarios")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per timed run")
    parser.add_argument("--max-seconds", type=int, default=600, help="cap of counted runs")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", 2)))
    parser.add_argument(
        "--blocking-threads", type=int, default=int(os.environ.get("WEB_THREADS", 8))
    )
    parser.add_argument(
        "--backpressure", type=int, default=int(os.environ.get("WEB_BACKPRESSURE", 64))
    )
    parser.add_argument("--server-cpus", default=None, help="taskset list for the server")
    parser.add_argument("--wrk-cpus", default=None, help="taskset list for wrk")
    parser.add_argument("--redis-cpus", default=None, help="taskset list for redis-server")
    parser.add_argument("--port", type=int, default=18100)
    parser.add_argument("--redis-port", type=int, default=16391)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flashsale_bench"
        ),
    )
    parser.add_argument("--mix-units", type=int, default=10000)
    parser.add_argument("--mix-attempts", type=int, default=100000)
    parser.add_argument("--mix-shoppers", type=int, default=50000)
    parser.add_argument("--reserve-attempts", type=int, default=20000)
    parser.add_argument("--rowlock-attempts", type=int, default=8000)
    parser.add_argument("--redis-calls", type=int, default=200000)
    parser.add_argument("--json", default=None, help="write every figure to this JSON file")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="set up, start the server, print a sale and a token, and wait",
    )
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    ws_bench.add_arguments(parser)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up on kill
    if not shutil.which(args.wrk):
        sys.exit("wrk is missing: apt-get install -y wrk (see .ci/install-system-packages)")
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        sys.exit(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    args.workdir = Path(tempfile.mkdtemp(prefix="flashsale-bench-"))
    env = bench_environment(args)
    info = machine()
    redis_process = start_redis(args, args.workdir)
    server = plain_server = None
    try:
        log(f"database {args.database_url.rsplit('/', 1)[-1]}: migrating")
        prepare_database(env)
        django_setup(env)
        shoppers = max(
            args.mix_shoppers,
            args.reserve_attempts + args.connections,
            args.rowlock_attempts + args.connections,
            50000,
        )
        log(f"{shoppers} shoppers")
        user_ids, user_tokens = shoppers_ready(shoppers, args.workdir)
        ctx = Context(args, env, user_ids, user_tokens)
        server = Server(args, env, "flashsale.wsgi:application", args.port)
        server.wait("/api/v1/bench/bare")
        if any(name.endswith("_plain") for name in names):
            plain_server = Server(
                args,
                env,
                "flashsale.wsgi:application",
                args.port + 2,
                extra_env={"OBSERVABILITY": "0"},
            )
            plain_server.wait("/api/v1/bench/bare")
        if args.serve:
            serve_forever(args, ctx)
            return
        results: dict[str, list] = {n: [] for n in names}
        for rep in range(args.reps):
            for name in names:
                if name in ("raw_lua_wsgi", "redis_lua"):
                    continue
                result = SCENARIOS[name](ctx, rep)
                results[name].append(result)
                if result:
                    log(
                        f"rep {rep + 1} {name}: {result['rps']:.0f} req/s, p50 "
                        f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                        f"{result['statuses']}"
                        + (f", sold {result.get('sold')}" if "sold" in result else "")
                    )
                else:
                    log(f"rep {rep + 1} {name}: not available")
        server.stop()
        server = None
        if plain_server:
            plain_server.stop()
            plain_server = None
        for rep in range(args.reps):
            for name in ("raw_lua_wsgi", "redis_lua"):
                if name in names:
                    result = SCENARIOS[name](ctx, rep)
                    results[name].append(result)
                    log(
                        f"rep {rep + 1} {name}: {result['rps']:.0f} req/s, p99 "
                        f"{result['p99_ms']:.1f} ms"
                    )
        summary = summarise(results)
        info["load_after"] = os.getloadavg()
        report(args, summary, info)
        if "ws" in names:
            ws_bench.report(
                [r["ws"] for r in results["ws"] if r], ws_bench.server_command(args, "PORT")
            )
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "machine": info,
                        "args": {k: str(v) for k, v in vars(args).items()},
                        "summary": summary,
                        "runs": results,
                    },
                    indent=1,
                    default=str,
                )
            )
        if "mix" in summary and any(s != args.mix_units for s in summary["mix"]["sold"]):
            sys.exit("FAIL: mix did not sell exactly the stock")
    finally:
        if server:
            server.stop()
        if plain_server:
            plain_server.stop()
        redis_process.kill()
        redis_process.wait()
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
