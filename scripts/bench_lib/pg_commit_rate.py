"""How many single-row INSERT commits/s PostgreSQL gives at 1..64 concurrent connections (the
WAL fsync and group commit that bound every successful purchase).

    .venv/bin/python scripts/bench_lib/pg_commit_rate.py [DATABASE_URL]

Writes to a scratch table in the given database (default flashsale_bench) and drops it."""

from __future__ import annotations

import sys
import threading
import time

import psycopg

URL = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/flashsale_bench"
TABLE = "_bench_commit_rate"


def main() -> None:
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial primary key, v int)")
    try:
        for threads in (1, 8, 16, 32, 64):
            per_thread = max(50, 400 // threads)

            def run(count: int = per_thread) -> None:
                with psycopg.connect(URL, autocommit=True) as c:
                    for _ in range(count):
                        c.execute(f"INSERT INTO {TABLE} (v) VALUES (1)")

            workers = [threading.Thread(target=run) for _ in range(threads)]
            start = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed = time.perf_counter() - start
            print(f"{threads:>3} connections: {threads * per_thread / elapsed:7.0f} commits/s")
    finally:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


if __name__ == "__main__":
    main()
