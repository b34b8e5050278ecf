"""Several nodes on this machine (apps/core/testing/fleet.py, scripts/cluster): two web nodes
and two ws nodes, each the Procfile's own command, behind Debian's nginx running the production
config (docs/nginx.conf) with the upstreams listing the nodes."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import websocket
from django.conf import settings
from django.db import connection

from apps.core.testing.fleet import fleet_start
from apps.core.tokens import shopper_token_issue
from conftest import admitted

pytestmark = [pytest.mark.fleet, pytest.mark.django_db(transaction=True)]
ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def fleet(django_db_setup):
    db = settings.DATABASES["default"]
    env = {
        "DJANGO_SETTINGS_MODULE": "flashsale.settings.base",
        "DATABASE_URL": "postgres://{}@{}:{}/{}".format(
            db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["NAME"]
        ),
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "JWT_KEYS": settings.JWT_KEYS,
        "DEBUG": "1",
        "SALE_SNAPSHOT_SECONDS": "0",
        "SOLD_OUT_MEMORY_SECONDS": "0",
        "RATELIMIT_ENABLE": "0",
        "TRUSTED_PROXY_COUNT": "1",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "0",
    }
    nodes = fleet_start(env=env, web_nodes=2, ws_nodes=2, threads=4)
    try:
        yield nodes
    finally:
        nodes.stop()


def test_a_web_node_killed_mid_sale_is_routed_around(fleet, make_sale, make_shopper):
    """SIGKILL one of two web nodes while buyers buy through nginx. Requests in flight on it
    get a 502 (and their client retries with the same idempotency key, as clients must);
    every later request is served by the other node, so no 5xx starts after the kill plus
    nginx's fail_timeout. The sale sells out exactly and the audit is clean."""
    from apps.inventory.audit import sale_audit
    from apps.inventory.reconcile import holds_sweep_orphans
    from apps.orders.models import HOLDING_STATUSES, Order

    sale = make_sale(inventory=40)
    buyers = [make_shopper() for _ in range(60)]
    killed_at: list[float] = []
    outcomes: list[tuple[float, int]] = []  # (start time, status) of every attempt

    keys = {user.id: uuid.uuid4().hex for user in buyers}

    def buy(user) -> int:
        key = keys[user.id]
        headers = {
            "Authorization": admitted(user, sale)["HTTP_AUTHORIZATION"],
            "X-Idempotency-Key": key,
        }
        with httpx.Client(timeout=60) as client:
            for _ in range(5):
                started = time.monotonic()
                response = client.post(
                    f"{fleet.url}/api/v1/flash_sales/{sale.id}/purchase",
                    json={"quantity": 1},
                    headers=headers,
                )
                status = response.status_code
                outcomes.append((started, status))
                if status < 500:
                    return status
        return status

    def killer():
        while len(outcomes) < 10:
            time.sleep(0.01)
        victim = next(iter(fleet.web))
        killed_at.append(time.monotonic())
        fleet.kill_web(victim)

    thread = threading.Thread(target=killer)
    thread.start()
    with ThreadPoolExecutor(max_workers=6) as pool:
        finals_in_order = list(pool.map(buy, buyers))
    finals = Counter(finals_in_order)
    thread.join()
    # A purchase cut on the dead node between its Redis hold and its commit leaves the hold
    # in flight until the orphan sweep (every 15 s, after ORPHAN_GRACE_SECONDS) settles it:
    # confirmed if the order was committed, given back (with its key and admission) if not.
    # Nothing is in flight now, so sweep at once, and let a shopper whose key was still
    # pending (409) retry, as clients must.
    holds_sweep_orphans(sale_id=sale.id, grace_seconds=0)
    cut = [user for user, final in zip(buyers, finals_in_order, strict=True) if final == 409]
    finals.subtract({409: len(cut)})
    finals.update(buy(user) for user in cut)
    finals = +finals
    connection.close()
    # A retry after a 502 may find its order made before the node died: 200, the replay.
    assert finals[201] + finals[200] == 40 and finals[410] == 20, (
        finals,
        Counter(s for _, s in outcomes),
    )
    # docs/nginx.conf's passive check: a node is skipped for fail_timeout (5 s) after failing.
    late_errors = [s for t, s in outcomes if s >= 500 and t > killed_at[0] + 5.0]
    assert late_errors == [], Counter(s for _, s in outcomes)
    assert Order.objects.filter(sale=sale, status__in=HOLDING_STATUSES).count() == 40
    audit = sale_audit(sale_id=sale.id)
    assert audit.clean, audit.problems


def _socket(port: int, sale, user) -> websocket.WebSocket:
    token, _ = shopper_token_issue(user_id=user.id, username=user.username)
    return websocket.create_connection(
        f"ws://127.0.0.1:{port}/ws/sales/{sale.id}/?token={token}",
        timeout=10,
        origin=ORIGIN,
    )


def _until_admission(sock: websocket.WebSocket, deadline: float) -> dict:
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        message = json.loads(sock.recv())
        if message["type"] == "admission":
            return message
    raise AssertionError("no admission pushed")


def test_an_admission_reaches_a_shopper_on_another_ws_node(fleet, make_sale, make_shopper):
    """Alice is connected to ws node A, Bob to ws node B; the releaser (this process, its own
    connection to the channel layer) admits both: each node pushes its shopper's admission."""
    from apps.waiting_room.services import sale_broadcast, sale_message, waiting_room_join
    from apps.waiting_room.tests.helpers import PRE_QUEUE, room, snapshot, tick
    from apps.waiting_room.tokens import admission_decode

    sale = make_sale(inventory=10, **PRE_QUEUE)
    alice, bob = make_shopper(), make_shopper()
    for shopper in (alice, bob):
        waiting_room_join(sale=snapshot(sale), user_id=shopper.id)
    node_a, node_b = list(fleet.ws)
    sockets = {alice.id: _socket(node_a, sale, alice), bob.id: _socket(node_b, sale, bob)}
    try:
        for sock in sockets.values():  # the state and the shopper's place, on connect
            assert [json.loads(sock.recv())["type"] for _ in range(2)] == ["sale", "queue"]
        sale_room = room(sale, admission_rate=100)
        tick(sale_room)
        deadline = time.monotonic() + 20
        while True:
            state = tick(sale_room)
            if state.now_serving >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert sale_broadcast(sale_id=sale.id, message=sale_message(sale_room, state), force=True)
        for user_id, sock in sockets.items():
            admission = _until_admission(sock, time.monotonic() + 15)
            decoded = admission_decode(admission["admission_token"])
            assert decoded.user_id == user_id and decoded.sale_id == str(sale.id)
    finally:
        for sock in sockets.values():
            sock.close()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(pid)


WS_CONNECTIONS = int(os.environ.get("WS_CONNECTIONS", "100"))


def test_one_ws_node_holds_many_watchers_and_fans_out_to_all(fleet, make_sale):
    """WS_CONNECTIONS watchers (100 here; scripts/ws_capacity runs thousands) on one ws node:
    one message published through the channel layer reaches every one. Prints the node's
    memory per connection and the fan-out time."""
    from apps.waiting_room.services import sale_broadcast, sale_message
    from apps.waiting_room.tests.helpers import PRE_QUEUE, room, tick

    sale = make_sale(inventory=10, **PRE_QUEUE)
    port = list(fleet.ws)[0]
    pid = fleet.ws[port].pid
    before = _rss_kb(pid)
    sockets = []
    try:
        started = time.monotonic()
        for _ in range(WS_CONNECTIONS):
            sock = websocket.create_connection(
                f"ws://127.0.0.1:{port}/ws/sales/{sale.id}/", timeout=30, origin=ORIGIN
            )
            assert json.loads(sock.recv())["type"] == "sale"
            sockets.append(sock)
        connect_seconds = time.monotonic() - started
        held = _rss_kb(pid)
        sale_room = room(sale)
        message = sale_message(sale_room, tick(sale_room)) | {"units_left": 3}
        sent_at = time.monotonic()
        assert sale_broadcast(sale_id=sale.id, message=message, force=True)
        for sock in sockets:
            while True:
                received = json.loads(sock.recv())
                if received.get("units_left") == 3:
                    break
        fan_out = time.monotonic() - sent_at
    finally:
        for sock in sockets:
            sock.close()
    print(
        f"\nws node: {WS_CONNECTIONS} watchers connected in {connect_seconds:.1f} s; "
        f"RSS {before / 1024:.0f} → {held / 1024:.0f} MiB "
        f"({(held - before) / WS_CONNECTIONS:.0f} KiB per connection); one publish reached all "
        f"in {fan_out * 1000:.0f} ms"
    )
