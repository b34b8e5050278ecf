"""Debian's nginx running docs/nginx.conf in front of test servers: a process of the test's
own (temporary prefix, loopback ports), never the system service."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from .ports import free_port

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "docs" / "nginx.conf"


MICROCACHE = "/var/cache/nginx/microcache"


def render_config(
    *, listen_port: int, web_ports: list[int], ws_ports: list[int], cache_dir: Path
) -> str:
    """docs/nginx.conf with its compose host names and ports replaced by loopback ones, and
    its microcache in the test's own directory."""
    text = CONFIG.read_text()
    replacements = {
        "  server web:8000": "\n".join(f"  server 127.0.0.1:{port}" for port in web_ports),
        "  server ws:8001": "\n".join(f"  server 127.0.0.1:{port}" for port in ws_ports),
        "listen 80 ": f"listen 127.0.0.1:{listen_port} ",
        f"proxy_cache_path {MICROCACHE} ": f"proxy_cache_path {cache_dir} ",
    }
    for old, new in replacements.items():
        assert old in text, f"docs/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


class Nginx:
    def __init__(
        self,
        *,
        web_ports: list[int],
        ws_ports: list[int] | None = None,
        per_address_limits: bool = True,
        access_log: Path | None = None,
    ) -> None:
        """``per_address_limits=False`` for a load test whose whole crowd is one address;
        ``access_log``: a file of "uri status request_time cache_status" lines."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="fs-nginx-"))
        self.prefix.chmod(0o755)
        site = render_config(
            listen_port=self.port,
            web_ports=web_ports,
            ws_ports=ws_ports or [free_port()],
            cache_dir=self.prefix / "microcache",
        )
        if not per_address_limits:
            site = re.sub(r"\n\s*limit_(req|conn)\s[^;]*;", "", site)
        (self.prefix / "site.conf").write_text(site)
        (self.prefix / "nginx.conf").write_text(
            f"""
user root;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  log_format timing '$uri $status $request_time $upstream_cache_status';
  access_log {f"{access_log} timing" if access_log else "off"};
  client_body_temp_path {self.prefix}/body;
  proxy_temp_path {self.prefix}/proxy;
  fastcgi_temp_path {self.prefix}/fastcgi;
  uwsgi_temp_path {self.prefix}/uwsgi;
  scgi_temp_path {self.prefix}/scgi;
  include {self.prefix}/site.conf;
}}
"""
        )
        self.process = subprocess.Popen(
            [
                "nginx",
                "-p",
                str(self.prefix),
                "-c",
                str(self.prefix / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                error = self.process.stderr.read().decode() if self.process.poll() else ""
                self.stop()
                raise RuntimeError(f"nginx did not start: {error}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(10)
        shutil.rmtree(self.prefix, ignore_errors=True)
