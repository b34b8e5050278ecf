"""A throwaway PostgreSQL 15 cluster on loopback for tests that must exhaust, cut or restart
the database without touching the machine's shared server (initdb into a temporary
directory, run as the ``postgres`` user, removed on stop)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from .ports import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


class PrivatePostgres:
    """``with PrivatePostgres(max_connections=20) as pg: pg.url("flashsale")``."""

    def __init__(self, *, max_connections: int = 20, user: str = "postgres") -> None:
        self.port = free_port()
        self.max_connections = max_connections
        # PostgreSQL refuses to run as root: as root, run it as ``user``; otherwise as ourselves.
        if os.geteuid() == 0:
            account = pwd.getpwnam(user)
            self._uid, self._gid = account.pw_uid, account.pw_gid
        else:
            self._uid, self._gid = os.geteuid(), os.getegid()
        self.workdir = Path(tempfile.mkdtemp(prefix="fs-pg-"))
        self.process: subprocess.Popen | None = None

    def _as_postgres(self) -> dict:
        if os.geteuid() != 0:
            return {}
        return {"user": self._uid, "group": self._gid, "extra_groups": []}

    def start(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            os.chown(self.workdir, self._uid, self._gid)
        data = self.workdir / "data"
        subprocess.run(
            [
                PG_BIN / "initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            **self._as_postgres(),
        )
        self.log = open(self.workdir / "postgres.log", "w")  # noqa: SIM115 (closed in stop)
        if os.geteuid() == 0:
            os.chown(self.log.name, self._uid, self._gid)
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.workdir),
            "max_connections": str(self.max_connections),
            "superuser_reserved_connections": "0",
            "fsync": "off",
            "synchronous_commit": "off",
            "shared_buffers": "16MB",
        }
        args = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        self.process = subprocess.Popen(
            [PG_BIN / "postgres", "-D", data, "-p", str(self.port), *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            **self._as_postgres(),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("private PostgreSQL did not start") from None
                time.sleep(0.05)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, schema_from: str | None = None) -> None:
        """Create ``name``; with ``schema_from`` (a libpq URL), copy that database's schema."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        if schema_from:
            dump = subprocess.run(
                [PG_BIN / "pg_dump", "--schema-only", "--no-owner", "--no-privileges", schema_from],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [PG_BIN / "psql", "-q", "-v", "ON_ERROR_STOP=1", self.url(name)],
                input=dump.stdout,
                check=True,
                capture_output=True,
            )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client).
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
