"""A purchase whose web worker dies between the Redis hold and the PostgreSQL commit: once
the orphan sweep has given the hold back, the request is known to have failed, so the
shopper can buy again (same key or a new one) on the same admission."""

import json
import os
import signal
import threading
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings
from django.test import Client

from apps.core.testing.waiting import wait_for
from apps.inventory.keys import sale_keys
from apps.inventory.reconcile import holds_sweep_orphans
from apps.orders.models import Order
from apps.protection.tests.servers import AppServer
from conftest import admitted


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _dsn() -> str:
    db = settings.DATABASES["default"]
    return "postgresql://{}@{}:{}/{}".format(
        db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["NAME"]
    )


def _purchase(client, sale, authorization, key):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        HTTP_AUTHORIZATION=authorization,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("retry_key", ["K", "K2"])
def test_a_worker_killed_mid_purchase_does_not_lock_the_shopper_out(
    make_sale, shopper, redis_client, retry_key
):
    sale = make_sale(inventory=2)
    authorization = admitted(shopper, sale, lifetime_seconds=600)["HTTP_AUTHORIZATION"]
    keys = sale_keys(sale.id)
    server = AppServer()
    locker = psycopg.connect(_dsn())
    watcher = psycopg.connect(_dsn(), autocommit=True)
    try:
        # Hold the sale's unit rows so the purchase blocks between its Redis hold and its
        # PostgreSQL statement.
        locker.execute(
            "SELECT number FROM inventory_unit WHERE sale_id = %s FOR UPDATE", [sale.id]
        ).fetchall()
        workers = _children(server.process.pid)
        assert workers, "granian has no worker process"

        def send():
            try:
                httpx.post(
                    f"{server.url}/api/v1/flash_sales/{sale.id}/purchase",
                    json={"quantity": 1},
                    headers={"Authorization": authorization, "X-Idempotency-Key": "K"},
                    timeout=30,
                )
            except httpx.HTTPError:
                pass  # the worker dies under it

        request = threading.Thread(target=send)
        request.start()

        def blocked() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE %s",
                ["%new_order%"],
            ).fetchone()
            return row[0] > 0

        wait_for(blocked, timeout=30, what="the purchase to wait on the unit rows")
        assert redis_client.hlen(keys.pending) == 1  # the Redis hold was taken
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        request.join(30)
        locker.rollback()

        def dead_backend_gone() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND query ILIKE %s",
                ["%WITH new_order%"],
            ).fetchone()
            return row[0] == 0

        wait_for(dead_backend_gone, timeout=30, what="the killed worker's transaction to end")
    finally:
        locker.close()
        watcher.close()
        respawned = _children(server.process.pid)
        server.stop()
        for pid in respawned:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not Order.objects.exists()

    assert holds_sweep_orphans(sale_id=sale.id, grace_seconds=0) == 1
    assert redis_client.scard(keys.free) == 2  # the unit is back

    # The request is known to have failed: the same key buys, and so does a new key on
    # the same admission (it was not spent).
    retry = _purchase(Client(), sale, authorization, retry_key)
    assert retry.status_code == 201, retry.content
    assert Order.objects.get().id.hex == retry.json()["order_id"].replace("-", "")
