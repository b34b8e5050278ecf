"""One process of the stampede test: N threads read a sale through the real page and API at
the same instant (when the test writes a line to stdin) and count the SQL queries they made.
Run by test_cache.py, not by pytest."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashsale.settings.test")
threading.stack_size(512 * 1024)


def main() -> None:
    import django

    django.setup()
    from django.conf import settings

    # Share the parent test's Redis keys (the test settings derive a prefix from the pid).
    settings.REDIS_KEY_PREFIX = os.environ["STAMPEDE_PREFIX"]
    settings.SALE_SNAPSHOT_SECONDS = float(os.environ.get("STAMPEDE_MEMORY_SECONDS", "1"))
    from django.db import connection
    from django.test import Client

    sale_id = os.environ["STAMPEDE_SALE_ID"]
    threads = int(os.environ["STAMPEDE_THREADS"])
    go = threading.Event()
    queries: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def count(execute, sql, params, many, context):
        with lock:
            queries.append(sql)
        return execute(sql, params, many, context)

    def read(n: int) -> None:
        client = Client()
        path = f"/sales/{sale_id}/" if n % 2 else f"/api/v1/flash_sales/{sale_id}"
        barrier.wait()
        go.wait()
        with connection.execute_wrapper(count):
            response = client.get(path, REMOTE_ADDR=f"10.0.{n // 250}.{n % 250}")
        with lock:
            statuses.append(response.status_code)
        connection.close()

    workers = [threading.Thread(target=read, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    # Every thread is at the starting line: tell the test, and fire when it says so.
    print("ready", flush=True)
    sys.stdin.readline()
    fired = time.time()
    go.set()
    for w in workers:
        w.join()
    print(json.dumps({"queries": queries, "statuses": statuses, "seconds": time.time() - fired}))


if __name__ == "__main__":
    sys.exit(main())
