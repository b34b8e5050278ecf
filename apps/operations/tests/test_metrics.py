"""/metrics: the request histogram, business counters and per-sale gauges, with real requests
against real PostgreSQL and Redis; and two granian workers' counts adding up."""

from __future__ import annotations

import json
import re
import tempfile
import threading
from pathlib import Path

import httpx
import pytest

from apps.protection.tests.servers import AppServer
from conftest import admitted

pytestmark = pytest.mark.django_db


def _value(text: str, name: str, **labels) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        sample_labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _scrape(client) -> str:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def _purchase(client, sale, user, key):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        **admitted(user, sale),
    )


def test_metrics_count_purchases_refusals_and_show_the_sale(client, make_sale, make_shopper):
    sale = make_sale(inventory=1)
    before = _scrape(client)
    assert _purchase(client, sale, make_shopper(), "a").status_code == 201
    assert _purchase(client, sale, make_shopper(), "b").status_code == 410
    after = _scrape(client)

    def grew(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("flashsale_purchase_attempts_total", outcome="reserved") == 1
    assert grew("flashsale_purchase_attempts_total", outcome="sold_out") == 1
    assert grew("flashsale_refusals_total", reason="sold_out") == 1
    route = "api/v1/flash_sales/<str:sale_id>/purchase"
    assert grew("http_server_request_duration_seconds_count", http_route=route) == 2
    assert (
        grew(
            "http_server_request_duration_seconds_count",
            http_route=route,
            http_response_status_code="410",
        )
        == 1
    )
    sale_id = str(sale.id)
    assert _value(after, "flashsale_sale_units_left", sale=sale_id) == 0
    assert _value(after, "flashsale_sale_units_held", sale=sale_id) == 1
    assert _value(after, "flashsale_sale_orders", sale=sale_id, status="RESERVED") == 1
    assert _value(after, "flashsale_sale_live", sale=sale_id) == 0  # sold out


def test_metrics_refuse_a_scraper_from_elsewhere(client):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403


def test_every_response_carries_a_request_id(client):
    mine = client.get("/healthz", HTTP_X_REQUEST_ID="req-123")
    assert mine["X-Request-ID"] == "req-123"
    made = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces\n")
    assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-ID"])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_granian_workers_counts_add_up(make_sale):
    """Multiprocess mode: each worker writes its own files, one scrape adds them up."""
    directory = tempfile.mkdtemp(prefix="fs-metrics-")
    server = AppServer(workers=2, env={"PROMETHEUS_MULTIPROC_DIR": directory})
    sent = 0
    lock = threading.Lock()
    try:
        with httpx.Client(base_url=server.url, timeout=5) as http:

            def burst(n: int) -> None:
                nonlocal sent
                for _ in range(n):
                    assert http.get("/api/v1/flash_sales/").status_code == 200
                    with lock:
                        sent += 1

            for _ in range(20):  # until both workers have served (each writes its own file)
                threads = [threading.Thread(target=burst, args=(25,)) for _ in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                pids = {p.name.split("_")[-1] for p in Path(directory).glob("histogram_*.db")}
                if len(pids) >= 2:
                    break
            assert len(pids) >= 2, "both workers served"
            text = http.get("/metrics").text
        counted = _value(
            text,
            "http_server_request_duration_seconds_count",
            http_route="api/v1/flash_sales/",
            http_response_status_code="200",
        )
        assert counted == sent
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_open_websockets_are_counted(client, make_sale):
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator

    from flashsale.asgi import application

    sale = make_sale()

    def open_now() -> float:
        return _value(_scrape(client), "flashsale_websocket_connections", route="sale")

    before = open_now()

    async def visit(check):
        socket = WebsocketCommunicator(
            application, f"/ws/sales/{sale.id}/", headers=[(b"origin", b"http://127.0.0.1:8000")]
        )
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=10)
        during = await check()
        await socket.disconnect()
        return during

    from asgiref.sync import sync_to_async

    during = async_to_sync(visit)(sync_to_async(open_now))
    assert during == before + 1
    assert open_now() == before
