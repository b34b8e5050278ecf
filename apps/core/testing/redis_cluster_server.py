"""A throwaway Redis Cluster on loopback (Debian's redis-server with ``cluster-enabled yes``,
joined by ``redis-cli --cluster create``): 3 masters and, by default, a replica per master.
For the cluster tests and scripts/redis_failover; never the machine's shared Redis."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .ports import free_port
from .redis_server import redis_server_start


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class RedisClusterServers:
    workdir: Path
    ports: list[int]
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)

    @property
    def seed_nodes(self) -> str:
        """The REDIS_CLUSTER_NODES value for this cluster."""
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2)

    def roles(self) -> dict[int, str]:
        """port → "master" / "slave" (alive nodes only)."""
        roles = {}
        for port, process in self.processes.items():
            if process.poll() is None:
                with contextlib.suppress(redis.RedisError):
                    roles[port] = self.client(port).info("replication")["role"]
        return roles

    def masters(self) -> list[int]:
        return sorted(port for port, role in self.roles().items() if role == "master")

    def master_of_slot(self, slot: int) -> int:
        for port in self.masters():
            for start, end, master, *_replicas in self.client(port).execute_command(
                "CLUSTER SLOTS"
            ):
                if start <= slot <= end:
                    return int(master[1])
        raise LookupError(slot)

    def kill(self, port: int) -> None:
        process = self.processes[port]
        process.kill()
        process.wait()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every alive node says cluster_state:ok."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for port in self.roles():
                with contextlib.suppress(redis.RedisError):
                    states.append(self.client(port).cluster("info")["cluster_state"])
            if states and all(state == "ok" for state in states):
                return
            time.sleep(0.05)
        raise RuntimeError("Redis Cluster did not become healthy")

    def flush(self) -> None:
        for port in self.masters():
            self.client(port).flushall()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def redis_cluster_start(
    *, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1000
) -> RedisClusterServers:
    """Start ``masters × (1 + replicas)`` nodes and join them; the caller must ``stop()``."""
    workdir = Path(tempfile.mkdtemp(prefix="fs-redis-cluster-"))
    ports: list[int] = []
    while len(ports) < masters * (1 + replicas):
        port = free_port()
        # The cluster bus listens on port + 10000: both must be free.
        if port not in ports and port + 10000 < 65536 and _port_free(port + 10000):
            ports.append(port)
    servers = RedisClusterServers(workdir=workdir, ports=ports)
    try:
        for port in ports:
            node_dir = workdir / str(port)
            node_dir.mkdir()
            servers.processes[port] = redis_server_start(
                port=port,
                workdir=str(node_dir),
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(node_dir / "nodes.conf"),
                    "--cluster-node-timeout",
                    str(node_timeout_ms),
                    # A replica of a dead master may take over at once (no stale-data guard:
                    # the data are a fast filter over PostgreSQL's guard).
                    "--cluster-replica-validity-factor",
                    "0",
                ],
            )
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        servers.wait_healthy()
        # The replicas must have synced before a master may be killed.
        deadline = time.monotonic() + 30
        while replicas and len(servers.masters()) != masters and time.monotonic() < deadline:
            time.sleep(0.05)
        return servers
    except BaseException:
        servers.stop()
        raise
