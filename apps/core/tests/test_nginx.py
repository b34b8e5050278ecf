"""docs/nginx.conf in front of the app.

Slow and idle connections (issue 10, item 3): idle sockets starve a bare granian (each holds
a backpressure slot and none is ever timed out); with docs/nginx.conf in front, the same
attack leaves /healthz answering, and nginx closes the idle sockets after
client_header_timeout. Also: granian itself closes a connection whose headers trickle in, and
an idle keep-alive connection.

The microcache (issue 12): the shared pages and the public now_serving reach the app once a
second, whatever the crowd; personal routes and POSTs are never kept."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from apps.core.testing.nginx_server import Nginx
from apps.protection.tests.servers import AppServer
from conftest import bearer

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


# --- The microcache (issue 12): the shared pages and now_serving reach the app once a second.


@pytest.fixture(scope="module")
def shop_behind_nginx(django_db_setup):
    """The app (no memory of its own pages, so every request it gets is a render of its own)
    behind docs/nginx.conf."""
    server = AppServer(env={"PUBLIC_PAGE_SECONDS": "0"})
    proxy = Nginx(web_ports=[server.port])
    try:
        yield proxy
    finally:
        proxy.stop()
        server.stop()


def _get(url: str, **kwargs) -> httpx.Response:
    response = httpx.get(url, timeout=10, **kwargs)
    assert response.status_code == 200, response.text[:300]
    return response


def _served_by_app(responses: list[httpx.Response]) -> int:
    """How many distinct app requests answered these (the app gives each its own id)."""
    return len({r.headers["X-Request-Id"] for r in responses})


def _twice_within_a_second(
    client: httpx.Client, first: str, second: str, **kwargs
) -> tuple[httpx.Response, httpx.Response]:
    """Two requests, the second sent well within a second of the first's answer (a busy
    machine may need a few tries), or the test fails."""
    for _ in range(10):
        before = client.get(first)
        sent_within = time.monotonic() + 0.8
        after = client.get(second, **kwargs)
        if time.monotonic() < sent_within:
            assert before.status_code == after.status_code == 200, after.text[:300]
            return before, after
    pytest.fail("could not send two requests within a second")


@pytest.mark.django_db(transaction=True)
def test_shared_pages_and_now_serving_reach_the_app_once_a_second(shop_behind_nginx, make_sale):
    sale = make_sale(starts_in=timedelta(seconds=90), pow_difficulty=0)
    base = shop_behind_nginx.url
    client = httpx.Client(base_url=base, timeout=10)
    for path in (
        f"/sales/{sale.id}/",
        f"/api/v1/flash_sales/{sale.id}/waiting_room/now_serving",
        "/",
    ):
        assert _get(base + path).headers["X-Cache"] == "MISS", path
        # The second within a second is the cache's: the same bytes, and the app never saw it.
        first, second = _twice_within_a_second(client, path, path)
        assert second.headers["X-Cache"] == "HIT", path
        assert _served_by_app([first, second]) == 1, path
        assert second.content == first.content
        assert "set-cookie" not in second.headers and "Cookie" not in second.headers.get("Vary", "")
        # A query string of its own does not get past the cache.
        first, busted = _twice_within_a_second(client, path, f"{path}?x={time.monotonic_ns()}")
        assert busted.headers["X-Cache"] == "HIT" and _served_by_app([first, busted]) == 1
        # A signed-in shopper's cookie changes nothing: the page is the same for everyone.
        cookies = {"Cookie": "sessionid=abc; csrftoken=def"}
        first, with_cookie = _twice_within_a_second(client, path, path, headers=cookies)
        assert with_cookie.headers["X-Cache"] == "HIT" and _served_by_app([first, with_cookie]) == 1
    # After the second the app is asked again (by one request; the others get the old copy).
    path = f"/sales/{sale.id}/"
    before = _get(base + path)
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.3)
        later = _get(base + path)
        if _served_by_app([before, later]) == 2:
            break
        assert time.monotonic() < deadline, "the microcache kept the page for more than a second"
    client.close()


@pytest.mark.django_db(transaction=True)
def test_a_herd_on_a_cold_page_is_one_request_to_the_app(shop_behind_nginx, make_sale):
    """proxy_cache_lock: 40 shoppers at once on a page nginx has not cached yet."""
    sale = make_sale(starts_in=timedelta(seconds=90), pow_difficulty=0)
    url = f"{shop_behind_nginx.url}/sales/{sale.id}/"
    barrier = threading.Barrier(40)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def load():
        with httpx.Client(timeout=10) as client:
            barrier.wait()
            response = client.get(url)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=load) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.status_code for r in answers} == {200}
    # One request went to the app; the others waited for its answer (or, on a machine so
    # busy that the herd spans more than the entry's second, took the copy being refreshed).
    statuses = Counter(r.headers["X-Cache"] for r in answers)
    assert statuses["MISS"] == 1, statuses
    assert set(statuses) <= {"MISS", "HIT", "UPDATING", "STALE"}, statuses
    assert _served_by_app(answers) <= 1 + statuses["STALE"], statuses


@pytest.mark.django_db(transaction=True)
def test_personal_routes_and_posts_are_never_cached(shop_behind_nginx, make_sale, shopper):
    sale = make_sale(starts_in=timedelta(seconds=-1), pow_difficulty=0, bot_policy="off")
    base = shop_behind_nginx.url
    auth = {"Authorization": bearer(shopper)["HTTP_AUTHORIZATION"]}
    join = f"{base}/api/v1/flash_sales/{sale.id}/waiting_room"
    joins = [httpx.post(join, json={}, headers=auth, timeout=10) for _ in range(2)]
    assert [r.status_code for r in joins] == [200, 200], joins[0].text
    requests = [
        ("/me", {}),
        (f"/sales/{sale.id}/me", {}),
        (f"/api/v1/flash_sales/{sale.id}/waiting_room/position", auth),
        (f"/sales/{sale.id}/queue/", {}),  # private: a redirect to sign in, or the page
        ("/time", {}),
    ]
    for path, headers in requests:
        answers = [
            httpx.get(base + path, headers=headers, timeout=10, follow_redirects=False)
            for _ in range(2)
        ]
        assert all("X-Cache" not in r.headers for r in answers), path
        assert _served_by_app(answers) == 2, path
    assert all("X-Cache" not in r.headers for r in joins)
    assert _served_by_app(joins) == 2
