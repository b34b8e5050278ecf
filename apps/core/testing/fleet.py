"""Several web nodes and ws nodes behind Debian's nginx on this machine (scripts/cluster and
the fleet tests): the Procfile's own web and ws commands on ports of their own, and nginx run
as our own process with a temp prefix and the production config (docs/nginx.conf) whose
upstreams are rewritten to list the local nodes. Never the system's nginx service."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .ports import free_port

ROOT = Path(__file__).resolve().parents[3]


def procfile_command(name: str, env: dict[str, str]) -> list[str]:
    """A Procfile line as argv, with ${VAR:-default} expanded from ``env``."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, _, command = line.partition(":")
        if process.strip() == name:
            expanded = re.sub(
                r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), command
            )
            return shlex.split(expanded)
    raise LookupError(name)


def nginx_config(
    *,
    conf: str,
    web_ports: list[int],
    ws_ports: list[int],
    listen_port: int,
    prefix: Path,
    per_address_limits: bool = True,
) -> str:
    """docs/nginx.conf (an http-level file, as in conf.d/) with its upstream servers replaced
    by the local nodes, inside a main config that runs under ``prefix``. A benchmark from one
    address turns the per-address limits off (``per_address_limits=False``)."""

    def upstream(name: str, ports: list[int], text: str) -> str:
        """The upstream's `server` lines replaced by one per local node, each with the
        production line's parameters (max_fails, fail_timeout: nginx's passive checks)."""
        pattern = re.compile(r"(upstream\s+" + name + r"\s*\{)(.*?)(\n\})", re.S)
        match = pattern.search(text)
        if not match:
            raise ValueError(f"docs/nginx.conf has no upstream {name}")
        lines = match.group(2).split("\n")
        server_lines = [line for line in lines if re.match(r"\s*server\s", line)]
        if not server_lines:
            raise ValueError(f"upstream {name} has no server line")
        params = server_lines[0].split(None, 2)[2] if len(server_lines[0].split()) > 2 else ";"
        body = [line for line in lines if line not in server_lines]
        servers = [f"  server 127.0.0.1:{port} {params}".rstrip() for port in ports]
        return (
            text[: match.start()]
            + match.group(1)
            + "\n".join([body[0], *servers, *body[1:]])
            + match.group(3)
            + text[match.end() :]
        )

    conf = upstream("web", web_ports, conf)
    conf = upstream("ws", ws_ports, conf)
    conf = re.sub(r"listen\s+[^;]+;", f"listen 127.0.0.1:{listen_port};", conf)
    # The microcache in this nginx's own directory (a fleet per test, each its own cache).
    conf = re.sub(r"proxy_cache_path\s+\S+", f"proxy_cache_path {prefix}/microcache", conf)
    if not per_address_limits:
        conf = re.sub(r"\n\s*limit_(req|conn)\s[^;]*;", "", conf)
    temp = prefix / "temp"
    return f"""worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
{conf}
}}
"""


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer: {log.read_text()[-2000:]}")
        time.sleep(0.1)


@dataclass
class Fleet:
    """N web nodes, M ws nodes and nginx in front; ``stop()`` ends them all."""

    env: dict[str, str]
    workdir: Path
    web: dict[int, subprocess.Popen] = field(default_factory=dict)
    ws: dict[int, subprocess.Popen] = field(default_factory=dict)
    nginx: subprocess.Popen | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, port: int, extra: dict[str, str]) -> subprocess.Popen:
        env = {**os.environ, **self.env, **extra}
        log = self.workdir / f"{name}-{port}.log"
        argv = procfile_command(name, env)
        argv[0] = str(ROOT / argv[0]) if argv[0].startswith(".venv") else argv[0]
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return process

    def start_web(self, *, workers: int = 1, threads: int = 8) -> int:
        port = free_port()
        self.web[port] = self._spawn(
            "web",
            port,
            {"WEB_PORT": str(port), "WEB_WORKERS": str(workers), "WEB_THREADS": str(threads)},
        )
        return port

    def start_ws(self) -> int:
        port = free_port()
        self.ws[port] = self._spawn("ws", port, {"WS_PORT": str(port)})
        return port

    def wait_ready(self) -> None:
        for port, process in self.web.items():
            _wait_http(
                f"http://127.0.0.1:{port}/healthz", process, self.workdir / f"web-{port}.log"
            )
        for port, process in self.ws.items():
            _wait_http(f"http://127.0.0.1:{port}/healthz", process, self.workdir / f"ws-{port}.log")

    def start_nginx(self, conf_path: Path | None = None, *, per_address_limits=True) -> None:
        conf_path = conf_path or ROOT / "docs" / "nginx.conf"
        self.port = free_port()
        prefix = self.workdir / "nginx"
        (prefix / "temp").mkdir(parents=True, exist_ok=True)
        os.chmod(prefix / "temp", 0o777)
        (prefix / "nginx.conf").write_text(
            nginx_config(
                conf=conf_path.read_text(),
                web_ports=list(self.web),
                ws_ports=list(self.ws),
                listen_port=self.port,
                prefix=prefix,
                per_address_limits=per_address_limits,
            )
        )
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.nginx = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(prefix / "stderr.log").open("w"),
            start_new_session=True,
        )
        _wait_http(f"{self.url}/healthz", self.nginx, prefix / "stderr.log", timeout=20)

    def kill_web(self, port: int) -> None:
        """SIGKILL a web node's whole process group (granian and its workers)."""
        process = self.web[port]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        processes = [*self.web.values(), *self.ws.values()]
        if self.nginx is not None:
            processes.append(self.nginx)
        for process in processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 10
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def fleet_start(
    *,
    env: dict[str, str],
    web_nodes: int,
    ws_nodes: int = 1,
    per_address_limits: bool = True,
    **web_options,
) -> Fleet:
    fleet = Fleet(env=env, workdir=Path(tempfile.mkdtemp(prefix="fs-fleet-")))
    try:
        for _ in range(web_nodes):
            fleet.start_web(**web_options)
        for _ in range(ws_nodes):
            fleet.start_ws()
        fleet.wait_ready()
        fleet.start_nginx(per_address_limits=per_address_limits)
        return fleet
    except BaseException:
        fleet.stop()
        raise
