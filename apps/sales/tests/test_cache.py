"""The sale cache: no stampede at the start second, stale entries refreshed by one request,
warmed before the start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from apps.core.memory import memories_reset
from apps.sales import selectors
from apps.sales.models import FlashSale
from apps.sales.selectors import sale_snapshot, sale_snapshot_key, sales_cache_warm
from apps.sales.services import sale_publish

CHILD = Path(__file__).with_name("stampede_child.py")
ROOT = Path(__file__).resolve().parents[3]


def _cold(sale_id) -> None:
    """Nothing cached anywhere: the worst case at the start."""
    from apps.core.redis import get_redis

    get_redis().delete(sale_snapshot_key(sale_id))
    memories_reset()


def _test_database_url() -> str:
    name = connection.settings_dict["NAME"]
    return f"postgres://postgres@127.0.0.1:5432/{name}"


@pytest.mark.django_db(transaction=True)
def test_thousand_concurrent_reads_at_the_start_make_a_handful_of_queries(make_sale):
    """4 processes x 250 threads read the sale page and the sale API in the same instant, just
    after the start, with the cache empty in Redis and in every process: one query in total."""
    sale = make_sale(starts_in=timedelta(seconds=-1))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashsale.settings.test",
        "DATABASE_URL": _test_database_url(),
        "STAMPEDE_PREFIX": django_settings.REDIS_KEY_PREFIX,
        "STAMPEDE_SALE_ID": str(sale.id),
        "STAMPEDE_THREADS": "250",
        "RATELIMIT_ENABLE": "0",
        "PYTHONPATH": str(ROOT),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, str(CHILD)],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in processes:
        assert p.stdout.readline().strip() == "ready"
    _cold(sale.id)
    for p in processes:
        p.stdin.write("go\n")
        p.stdin.flush()
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]

    print("stampede: seconds per process", [round(r["seconds"], 2) for r in results])
    statuses = Counter(s for r in results for s in r["statuses"])
    queries = [q for r in results for q in r["queries"]]
    print("stampede: queries", len(queries))
    assert statuses == {200: 1000}, statuses
    assert len(queries) <= 3, queries  # a handful; in practice one
    assert all("sales_flashsale" in q for q in queries)


@pytest.mark.django_db(transaction=True)
def test_thousand_threads_in_one_process_make_one_query(make_sale, settings):
    """Within one process the first thread's read is shared by every thread waiting for it."""
    settings.SALE_SNAPSHOT_SECONDS = 1.0
    sale = make_sale(starts_in=timedelta(seconds=1))
    _cold(sale.id)
    queries, lock, barrier = [], threading.Lock(), threading.Barrier(1000)
    found = Counter()

    def count(execute, sql, params, many, context):
        with lock:
            queries.append(sql)
        return execute(sql, params, many, context)

    def read():
        barrier.wait()
        with connection.execute_wrapper(count):
            snapshot = sale_snapshot(str(sale.id))
        with lock:
            found[snapshot.id if snapshot else None] += 1
        connection.close()

    threading.stack_size(512 * 1024)
    try:
        threads = [threading.Thread(target=read) for _ in range(1000)]
    finally:
        threading.stack_size(0)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == {str(sale.id): 1000}
    assert len(queries) == 1, queries


@pytest.mark.django_db(transaction=True)
def test_a_stale_entry_is_refreshed_by_one_request_while_the_others_serve_it(
    make_sale, settings, redis_client
):
    settings.SALE_CACHE_FRESH_SECONDS = 30
    sale = make_sale(price="10.00")
    # Change the price behind the cache's back and make the cached entry old.
    FlashSale.objects.filter(id=sale.id).update(price="12.00")
    meta = sale_snapshot_key(sale.id)
    entry = json.loads(redis_client.get(meta))
    entry["cached_at_ms"] = int(time.time() * 1000) - 60_000
    redis_client.set(meta, json.dumps(entry))
    memories_reset()

    queries, prices, lock = [], Counter(), threading.Lock()
    barrier = threading.Barrier(200)

    def count(execute, sql, params, many, context):
        with lock:
            queries.append(sql)
        return execute(sql, params, many, context)

    def read():
        barrier.wait()
        with connection.execute_wrapper(count):
            snapshot = selectors._snapshot_shared(str(sale.id))  # no per-process sharing
        with lock:
            prices[snapshot.price] += 1
        connection.close()

    threads = [threading.Thread(target=read) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(queries) == 1, queries
    assert sum(prices.values()) == 200 and prices["12.00"] >= 1
    # Afterwards everybody sees the refreshed entry.
    assert selectors._snapshot_shared(str(sale.id)).price == "12.00"


@pytest.mark.django_db
def test_publishing_a_saved_sale_replaces_the_cached_one(make_sale, client):
    sale = make_sale(price="10.00")
    assert client.get(f"/api/v1/flash_sales/{sale.id}").json()["price"] == "10.00"
    FlashSale.objects.filter(id=sale.id).update(price="7.50")
    sale_publish(sale_id=sale.id)  # what sale_saved() runs on commit
    response = client.get(f"/api/v1/flash_sales/{sale.id}")
    assert response.json()["price"] == "7.50"
    assert response["Cache-Control"] == "public, max-age=1"


@pytest.mark.django_db
def test_sale_api_reads_no_table_once_warm(make_sale, client, django_assert_num_queries):
    sale = make_sale(inventory=5)
    sales_cache_warm()
    with django_assert_num_queries(0):
        body = client.get(f"/api/v1/flash_sales/{sale.id}").json()
        listing = client.get("/api/v1/flash_sales/").json()
        page = client.get(f"/sales/{sale.id}/")
    assert body["remaining_inventory"] == 5 and body["phase"] == "live"
    assert [s["id"] for s in listing] == [str(sale.id)]
    assert page.status_code == 200


@pytest.mark.django_db
def test_the_warm_task_fills_the_cache_ahead_of_starts(make_sale, redis_client):
    soon = make_sale(starts_in=timedelta(minutes=20))
    later = make_sale(starts_in=timedelta(days=3))
    for sale in (soon, later):
        redis_client.delete(sale_snapshot_key(sale.id))

    assert sales_cache_warm(within_seconds=3600) == 1
    assert redis_client.exists(sale_snapshot_key(soon.id))
    assert not redis_client.exists(sale_snapshot_key(later.id))


@pytest.mark.django_db
def test_an_unknown_sale_is_remembered_briefly(client, django_assert_num_queries):
    import uuid

    missing = str(uuid.uuid4())
    assert sale_snapshot(missing) is None
    memories_reset()
    with django_assert_num_queries(0):
        assert sale_snapshot(missing) is None  # from Redis's short "no such sale" entry
