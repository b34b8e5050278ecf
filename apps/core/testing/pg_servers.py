"""Throwaway PostgreSQL engines on loopback for the replica and pooler tests and scripts:
a primary of its own (initdb), a streaming replica of it (pg_basebackup -R), and PgBouncer
in transaction mode in front. Each runs as the ``postgres`` user (initdb refuses root) in a
temp directory, on free ports; ``stop()`` ends it and removes the directory. Never the
machine's shared server."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .ports import free_port
from .processes import process_stop

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"


def _as_postgres(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", OS_USER, "--", *argv]
    return subprocess.run(argv, check=True, capture_output=True, timeout=120, **kwargs)


def _workdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(OS_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _wait_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"], check=False
        )
        if done.returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"PostgreSQL on port {port} did not become ready")


@dataclass
class PgServer:
    port: int
    datadir: Path
    workdir: Path

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def url(self, dbname: str) -> str:
        """A DATABASE_URL for django-environ."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def ctl(self, *args: str) -> None:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-w", *args])

    def start(self) -> None:
        self.ctl("-l", str(self.workdir / "log"), "start")
        _wait_ready(self.port)

    def promote(self) -> None:
        self.ctl("promote")

    def in_recovery(self) -> bool:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]

    def stop(self) -> None:
        try:
            self.ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.workdir, ignore_errors=True)


def _started(server: PgServer) -> PgServer:
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


def pg_primary_start() -> PgServer:
    """A new cluster that accepts streaming replicas (trust auth on loopback only)."""
    workdir = _workdir("fs-pg-primary-")
    datadir = workdir / "data"
    port = free_port()
    _as_postgres(
        [str(PG_BIN / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    )
    with open(datadir / "postgresql.conf", "a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nfsync = off\n"
            "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 40\n"
            "shared_buffers = 32MB\n"
        )
    with open(datadir / "pg_hba.conf", "a") as hba:
        hba.write("host replication postgres 127.0.0.1/32 trust\n")
    return _started(PgServer(port=port, datadir=datadir, workdir=workdir))


def pg_replica_start(primary: PgServer) -> PgServer:
    """A hot standby streaming from ``primary`` (pg_basebackup -R writes its connection)."""
    workdir = _workdir("fs-pg-replica-")
    datadir = workdir / "data"
    port = free_port()
    _as_postgres(
        [
            str(PG_BIN / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(datadir),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        ]
    )
    with open(datadir / "postgresql.conf", "a") as conf:
        conf.write(f"\nport = {port}\n")
    return _started(PgServer(port=port, datadir=datadir, workdir=workdir))


@dataclass
class PgBouncer:
    port: int
    workdir: Path
    process: subprocess.Popen

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def show(self, what: str) -> list[tuple]:
        """SHOW POOLS / STATS / CLIENTS on the admin console."""
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/pgbouncer",
            autocommit=True,
            prepare_threshold=None,
        ) as conn:
            cursor = conn.cursor()
            # The admin console speaks the simple query protocol only.
            cursor.execute(f"SHOW {what}".encode(), prepare=False)
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stop(self) -> None:
        process_stop(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)


def pgbouncer_start(databases: dict[str, tuple[int, str]], *, pool_size: int = 10) -> PgBouncer:
    """PgBouncer in transaction mode: ``databases`` maps a client-side name to (server port,
    server database). Clients may be many; each pool holds at most ``pool_size`` server
    connections."""
    workdir = _workdir("fs-pgbouncer-")
    port = free_port()
    lines = [f"{name} = host=127.0.0.1 port={p} dbname={db}" for name, (p, db) in databases.items()]
    (workdir / "users.txt").write_text('"postgres" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        + "\n".join(lines)
        + f"""
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/users.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
"""
    )
    if os.geteuid() == 0:
        entry = pwd.getpwnam(OS_USER)
        for path in workdir.iterdir():
            os.chown(path, entry.pw_uid, entry.pw_gid)
    argv = [shutil.which("pgbouncer") or "/usr/sbin/pgbouncer", str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", OS_USER, "--", *argv]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bouncer = PgBouncer(port=port, workdir=workdir, process=process)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            bouncer.show("VERSION")
            return bouncer
        except psycopg.Error:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    log = (workdir / "pgbouncer.log").read_text() if (workdir / "pgbouncer.log").exists() else ""
    bouncer.stop()
    raise RuntimeError(f"pgbouncer did not start: {log[-1000:]}")
