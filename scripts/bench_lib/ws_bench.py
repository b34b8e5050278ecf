"""The ws scenario of scripts/bench: one ws process (the Procfile's ``ws`` command) with 1,000,
5,000 and 10,000 sockets watching one sale, the sale's broadcast published through the real
path (``sale_broadcast``, the channel layer) at 4 Hz, every delivered message timed.

Prints, per number of connections:
  ws_msgs_per_s N <messages delivered per second within the publishing window>
  ws_p99_ms N <p99 of publish-to-socket latency over every delivered message>
  ws_last_client_ms N <p99 over broadcasts of the time until the last socket had it>
  ws_first_client_ms N <p99 over broadcasts of the time until the first socket had it: the
                        publish, the channel layer and the server's wake-up>
  ws_fanout_ms N <the server's own stamp (flashsale_websocket_broadcast_seconds): mean time
                  from a broadcast's first write to its last, wall clock>
  ws_fanout_p99_ms N <its p99, as the bound of the histogram's bucket ("at most")>
  ws_server_us_per_msg N <CPU of the ws process per delivered message, µs>
  ws_missed N <broadcast messages some socket never got (0 when every socket got each one)>
  ws_stale N <messages of an earlier measurement a socket got on connect (not counted)>
  ws_skipped N <broadcasts the server skipped, a newer one having come while it was still
                writing (a starved server; their messages count as missed)>
  ws_client_cpu_pct N <CPU of the load client processes, % of one core each>
  ws_server_starved_pct N <% of the time the ws process waited for a CPU (shared machine)>
  ws_capacity_msgs_per_s N <1e6 / ws_server_us_per_msg: what one free core delivers>
  ws_fanout_cpu_ms N <N × ws_server_us_per_msg: one broadcast's CPU, the last client's floor>

The load client (ws_load.py) is raw asyncio sockets in several processes; its CPU is printed
so a reader can see it was not the bottleneck. Where a broadcast's latency goes: first client
(publish to the server's first write) + fan-out (the server's writes, its own stamp) + what
the clients add (last client - first client - fan-out, about 0 when they keep up).
--ws-server-cpus / --ws-client-cpus pin the server and the clients (taskset lists) to keep
them off each other's cores. Standalone (own Redis, own database, no wrk):
  .venv/bin/python scripts/bench_lib/ws_bench.py --sizes 1000,5000 --port 18400 --redis-port 16700
"""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apps.core.testing.processes import process_stop  # noqa: E402
from scripts.bench_lib.ws_load import LoadClient  # noqa: E402
from scripts.bench_lib.ws_stats import figures, histogram_quantile, publish_at  # noqa: E402

SIZES = (1000, 5000, 10000)
ORIGIN = "http://127.0.0.1:8000"


def tree_pids(pid: int) -> list[int]:
    """``pid`` and every descendant (a server's workers are children)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return found


def tree_runqueue_seconds(pid: int) -> float:
    """How long the threads of ``pid`` and its descendants waited for a CPU while runnable
    (/proc/*/task/*/schedstat): on a shared machine, the time the server was starved."""
    total = 0
    for process in tree_pids(pid):
        try:
            tasks = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                total += int(Path(f"/proc/{process}/task/{task}/schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and every descendant (granian's workers are children)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


class WsServer:
    """The Procfile's ws command on a port of its own."""

    def __init__(
        self,
        env: dict,
        port: int,
        log_path: Path,
        command: str | None = None,
        cpus: str | None = None,
    ):
        from apps.core.testing.fleet import procfile_command

        self.port = port
        if command:  # another server to compare, e.g. "daphne -b 127.0.0.1 -p {port} ..."
            command = shlex.split(command.format(port=port))
        else:
            command = procfile_command("ws", {**env, "WS_PORT": str(port)})
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        self.command = " ".join(command)
        self.process = subprocess.Popen(
            command,
            cwd=str(ROOT),
            env={**env, "WS_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=open(log_path, "w"),  # noqa: SIM115
            start_new_session=True,
        )
        self.log_path = log_path

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"ws server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError as exc:
                if getattr(exc, "code", None):
                    return
                time.sleep(0.2)
        sys.exit("ws server did not start")

    def stop(self) -> None:
        process_stop(self.process)  # the whole group: its workers too


def broadcast_publisher(sale_id: str):
    """``publish(seq, sent_at)``: the sale's message as the releaser builds it, through
    ``sale_broadcast`` (forced past the coalescing gate: the bench sets the rate)."""
    from apps.sales.models import FlashSale
    from apps.waiting_room.services import (
        room_settings,
        sale_broadcast,
        sale_message,
        waiting_room_tick,
    )

    room = room_settings(FlashSale.objects.get(pk=sale_id))
    base = sale_message(room, waiting_room_tick(room=room, units_reserved=0))

    def publish(seq: int, sent_at: float) -> None:
        message = base | {
            "now_serving": seq * 25,
            "waiting": 50_000 - seq * 25,
            "bench_seq": seq,
            "bench_sent": sent_at,
        }
        sale_broadcast(sale_id=sale_id, message=message, force=True)

    return publish


def broadcast_histogram(metrics_dir: str | None) -> tuple[dict[float, float], float, float, float]:
    """The ws process's ``flashsale_websocket_broadcast_seconds`` from its metrics files
    (prometheus multiprocess mode): cumulative buckets, count, sum; and the broadcasts it
    skipped (``flashsale_websocket_broadcasts_skipped_total``)."""
    buckets: dict[float, float] = {}
    count = total = skipped = 0.0
    if not metrics_dir:
        return buckets, count, total, skipped
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)
    for metric in registry.collect():
        if metric.name == "flashsale_websocket_broadcasts_skipped":
            skipped += sum(s.value for s in metric.samples if s.name.endswith("_total"))
        if metric.name != "flashsale_websocket_broadcast_seconds":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
    return buckets, count, total, skipped


def fanout_figures(before, after) -> dict:
    """The server's fan-out times over a measurement (the difference of two histograms)."""
    buckets = {b: n - before[0].get(b, 0.0) for b, n in after[0].items()}
    count, total = after[1] - before[1], after[2] - before[2]
    return {
        "fanouts": count,
        "fanout_mean_ms": 1000 * total / count if count else float("nan"),
        "fanout_p99_ms": 1000 * histogram_quantile(buckets, count, 0.99),
        # broadcasts the server never wrote, a newer one having come while it was writing
        "skipped": after[3] - before[3],
    }


def measure(
    *,
    port: int,
    server_pid: int,
    sale_id: str,
    connections: int,
    seconds: float,
    rate_hz: float,
    clients: int,
    publish,
    client_cpus: str | None = None,
    metrics_dir: str | None = None,
) -> dict:
    url = f"ws://127.0.0.1:{port}/ws/sales/{sale_id}/"
    client = LoadClient([url] * connections, origin=ORIGIN, processes=clients, cpus=client_cpus)
    try:
        connected, errors, connect_seconds = client.wait_connected()
        if connected < connections:
            print(f"  only {connected} of {connections} connected: {errors}", flush=True)
        time.sleep(1.0)
        print(f"  {connected} connected in {connect_seconds:.1f} s; publishing", flush=True)
        client.measure()
        histogram_before = broadcast_histogram(metrics_dir)
        cpu_before, started = tree_cpu_seconds(server_pid), time.monotonic()
        waited_before = tree_runqueue_seconds(server_pid)
        sent = publish_at(rate_hz, seconds, publish)
        time.sleep(1 / rate_hz)
        cpu = tree_cpu_seconds(server_pid) - cpu_before
        waited = tree_runqueue_seconds(server_pid) - waited_before
        wall = time.monotonic() - started
        time.sleep(2.0)  # stragglers still count for latency, not for the rate
        received = client.stop()
        fanout = fanout_figures(histogram_before, broadcast_histogram(metrics_dir))
    finally:
        client.kill()
    result = figures(received, sent, connected, 1 / rate_hz)
    result.update(fanout)
    result.update(
        connect_seconds=connect_seconds,
        connect_errors=errors,
        server_cpu_pct=100 * cpu / wall,
        server_starved_pct=100 * waited / wall,
        # the CPU of the window over the messages delivered in it (a backlog delivered after
        # the window would make a starved server look cheap)
        server_us_per_msg=1e6 * cpu / max(1, result["in_window"]),
        client_cpu_pct=[100 * c / (wall + 2.0 + 1 / rate_hz) for c in received["cpu_seconds"]],
    )
    return result


def run(
    env: dict,
    sale_id: str,
    *,
    port: int,
    workdir: Path,
    sizes,
    seconds: float,
    rate_hz: float,
    clients: int,
    log=print,
    command: str | None = None,
    server_cpus: str | None = None,
    client_cpus: str | None = None,
) -> dict:
    """One repetition: a fresh ws server, each size in turn; figures by size."""
    publish = broadcast_publisher(sale_id)
    server = WsServer(env, port, workdir / f"ws-{port}.log", command, server_cpus)
    results = {}
    try:
        server.wait()
        for size in sizes:
            r = measure(
                port=port,
                server_pid=server.process.pid,
                sale_id=sale_id,
                connections=size,
                seconds=seconds,
                rate_hz=rate_hz,
                clients=clients,
                publish=publish,
                client_cpus=client_cpus,
                metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR"),
            )
            results[size] = r
            log(
                f"ws {size}: {r['msgs_per_s']:.0f} msgs/s, p50 {r['p50_ms']:.0f} ms, p99 "
                f"{r['p99_ms']:.0f} ms, first client p99 {r['first_client_p99_ms']:.0f} ms, "
                f"server fan-out {r['fanout_mean_ms']:.0f} ms (p99 <= {r['fanout_p99_ms']:.0f}), "
                f"last client p99 {r['last_client_p99_ms']:.0f} ms, "
                f"missed {r['missed']} (stale on connect {r['stale']}, broadcasts skipped by "
                f"the server {r['skipped']:.0f}), server "
                f"{r['server_cpu_pct']:.0f}% CPU "
                f"(waited for a CPU {r['server_starved_pct']:.0f}% of the time) "
                f"({r['server_us_per_msg']:.1f} µs/msg), clients "
                f"{', '.join(f'{c:.0f}%' for c in r['client_cpu_pct'])}, connected in "
                f"{r['connect_seconds']:.1f} s {r['connect_errors'] or ''}"
            )
            time.sleep(1.0)
    finally:
        server.stop()
    return results


def report(reps: list[dict], command: str = "") -> None:
    """The machine-readable lines: medians over repetitions, per size."""
    reps = [r for r in reps if r]
    if not reps:
        return
    print()
    if command:
        print(f"ws server: {command}")
    for size in sorted({s for r in reps for s in r}):
        runs = [r[size] for r in reps if size in r]

        def med(key, runs=runs):
            return statistics.median(x[key] for x in runs)

        print(f"ws_msgs_per_s {size} {med('msgs_per_s'):.0f}")
        print(f"ws_p99_ms {size} {med('p99_ms'):.0f}")
        print(f"ws_last_client_ms {size} {med('last_client_p99_ms'):.0f}")
        print(f"ws_first_client_ms {size} {med('first_client_p99_ms'):.0f}")
        print(f"ws_fanout_ms {size} {med('fanout_mean_ms'):.0f}")
        print(f"ws_fanout_p99_ms {size} {med('fanout_p99_ms'):.0f}")
        print(f"ws_server_us_per_msg {size} {med('server_us_per_msg'):.1f}")
        print(f"ws_missed {size} {med('missed'):.0f}")
        print(f"ws_stale {size} {med('stale'):.0f}")
        print(f"ws_skipped {size} {med('skipped'):.0f}")
        print(f"ws_server_cpu_pct {size} {med('server_cpu_pct'):.0f}")
        # What one core would do at the CPU each message cost (the figure that survives a
        # shared machine): messages a second, and one broadcast's CPU (the last client's
        # latency on a free core, plus the publish).
        print(f"ws_capacity_msgs_per_s {size} {1e6 / med('server_us_per_msg'):.0f}")
        print(f"ws_fanout_cpu_ms {size} {size * med('server_us_per_msg') / 1000:.0f}")
        print(f"ws_server_starved_pct {size} {med('server_starved_pct'):.0f}")
        clients = statistics.median(max(x["client_cpu_pct"]) for x in runs)
        print(f"ws_client_cpu_pct {size} {clients:.0f}")


def scenario(ctx, rep, sale_new):
    """scripts/bench's ws scenario (``sale_new`` is bench.py's); returns bench.py's usual
    dict (the 5,000-socket figures, or the largest measured) with every size under "ws"."""
    from apps.core.testing.ports import free_port

    args = ctx.args
    sizes = [int(s) for s in args.ws_sizes.split(",")]
    by_size = run(
        ctx.env,
        sale_new(10),
        port=free_port(),
        workdir=args.workdir,
        sizes=sizes,
        seconds=args.ws_seconds,
        rate_hz=args.ws_rate,
        clients=args.ws_clients,
        command=args.ws_command,
        server_cpus=args.ws_server_cpus,
        client_cpus=args.ws_client_cpus,
    )
    main = by_size.get(5000) or by_size[max(by_size)]
    return {
        "rps": main["msgs_per_s"],
        "p50_ms": main["p50_ms"],
        "p99_ms": main["p99_ms"],
        "statuses": {},
        "ws": by_size,
    }


def add_arguments(parser) -> None:
    parser.add_argument("--ws-sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--ws-seconds", type=float, default=10.0, help="publishing window")
    parser.add_argument("--ws-rate", type=float, default=4.0, help="broadcasts per second")
    parser.add_argument("--ws-clients", type=int, default=2, help="load client processes")
    parser.add_argument("--ws-server-cpus", default=None, help="taskset list for the ws server")
    parser.add_argument(
        "--ws-client-cpus", default=None, help="CPU list (taskset's form) for the load clients"
    )
    parser.add_argument(
        "--ws-command",
        default=None,
        help="another ws server to measure, {port} for its port (default: the Procfile's ws)",
    )


def server_command(args, port: int | str) -> str:
    from apps.core.testing.fleet import procfile_command

    if args.ws_command:
        return args.ws_command.format(port=port)
    return " ".join(procfile_command("ws", {"WS_PORT": str(port)}))


def main() -> None:
    import argparse
    import shutil
    import tempfile

    from scripts.bench_lib import bench

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--port", type=int, default=18400)
    parser.add_argument("--redis-port", type=int, default=16700)
    parser.add_argument("--redis-cpus", default=None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flashsale_bench_ws"
        ),
    )
    parser.add_argument("--sizes", default=None, help="alias of --ws-sizes")
    add_arguments(parser)
    args = parser.parse_args()
    if args.sizes:
        args.ws_sizes = args.sizes
    args.workdir = Path(tempfile.mkdtemp(prefix="flashsale-ws-bench-"))
    env = bench.bench_environment(args)
    redis_process = bench.start_redis(args, args.workdir)
    try:
        bench.prepare_database(env)
        bench.django_setup(env)
        sizes = [int(s) for s in args.ws_sizes.split(",")]
        reps = []
        for _ in range(args.reps):
            reps.append(
                run(
                    env,
                    bench.sale_new(10),
                    port=args.port,
                    workdir=args.workdir,
                    sizes=sizes,
                    seconds=args.ws_seconds,
                    rate_hz=args.ws_rate,
                    clients=args.ws_clients,
                    log=bench.log,
                    command=args.ws_command,
                    server_cpus=args.ws_server_cpus,
                    client_cpus=args.ws_client_cpus,
                )
            )
        report(reps, server_command(args, args.port))
    finally:
        redis_process.kill()
        redis_process.wait()
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
