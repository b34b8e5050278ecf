"""Slow and idle connections (issue 10, item 3): idle sockets starve a bare granian (each
holds a backpressure slot and none is ever timed out); with docs/nginx.conf in front, the
same attack leaves /healthz answering, and nginx closes the idle sockets after
client_header_timeout. Also: granian itself closes a connection whose headers trickle in, and
an idle keep-alive connection."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from apps.core.testing.nginx_server import Nginx
from apps.protection.tests.servers import AppServer

IDLE_SOCKETS = 200
BACKPRESSURE = 64  # the Procfile's, per worker


def _idle_sockets(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def _healthy(url: str, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.fixture(scope="module")
def granian():
    server = AppServer(
        extra_args=(
            "--backpressure",
            str(BACKPRESSURE),
            "--http1-header-read-timeout",
            "5000",
        )
    )
    try:
        yield server
    finally:
        server.stop()


def test_idle_sockets_no_longer_stop_healthz_behind_nginx(granian):
    proxy = Nginx(web_ports=[granian.port])
    sockets: list[socket.socket] = []
    try:
        assert _healthy(proxy.url)
        sockets = _idle_sockets(proxy.port, IDLE_SOCKETS)
        # The attack that stops a bare granian: through nginx, the shop keeps answering.
        for _ in range(5):
            assert _healthy(proxy.url), "nginx stopped answering under idle sockets"
        # nginx closes sockets that send no request within client_header_timeout (5 s).
        deadline = time.monotonic() + 20
        while not all(_closed_by_server(s) for s in sockets):
            assert time.monotonic() < deadline, "nginx kept idle sockets open"
            time.sleep(0.2)
    finally:
        for sock in sockets:
            sock.close()
        proxy.stop()


def test_a_bare_granian_is_starved_by_idle_sockets_but_drops_trickled_headers(granian):
    """Why nginx is in front (docs/nginx.conf): granian never times out a silent socket."""
    sockets = _idle_sockets(granian.port, BACKPRESSURE + 1)
    try:
        assert not _healthy(granian.url, timeout=2), "granian now times out idle sockets"
    finally:
        for sock in sockets:
            sock.close()
    deadline = time.monotonic() + 20
    while not _healthy(granian.url):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # A keep-alive connection left idle after a request is closed by the same timeout.
    idle = socket.create_connection(("127.0.0.1", granian.port), timeout=5)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    # Headers sent a line at a time are cut off by --http1-header-read-timeout.
    slow = socket.create_connection(("127.0.0.1", granian.port), timeout=5)
    try:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        deadline = time.monotonic() + 20
        while not _closed_by_server(slow):
            assert time.monotonic() < deadline, "granian kept a half-sent request open"
            try:
                slow.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            time.sleep(0.5)
        deadline = time.monotonic() + 20
        while not _closed_by_server(idle):
            assert time.monotonic() < deadline, "granian kept an idle keep-alive connection"
            time.sleep(0.2)
    finally:
        slow.close()
        idle.close()
