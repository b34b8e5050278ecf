#!/usr/bin/env python
"""Redis memory per waiting shopper, measured with the waiting room's real Lua scripts.

Starts a redis-server of its own (never touches the shared one), joins N shoppers before the
start (the random-draw lane: a sorted set) and N after it (the first-come lane: a hash of
tickets), and prints used_memory per shopper for each, with the extrapolation to 10 million.

    .venv/bin/python scripts/waiting_room_memory.py --users 1000000
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.core.testing.ports import free_port  # noqa: E402
from apps.core.testing.redis_server import redis_server_start  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()

    port = free_port()
    workdir = tempfile.mkdtemp(prefix="wr-memory-")
    server = redis_server_start(port=port, workdir=workdir)
    try:
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashsale.settings.base")
        import django

        django.setup()
        from apps.core.redis import get_redis
        from apps.waiting_room.keys import room_keys
        from apps.waiting_room.redis_scripts import PLACE, place_keys

        redis = get_redis()
        for _ in range(100):
            try:
                redis.ping()
                break
            except Exception:
                time.sleep(0.05)
        print(redis.info("server")["redis_version"], "on port", port)
        place = PLACE

        def used() -> int:
            return int(redis.info("memory")["used_memory"])

        def join_all(sale_id: str, starts_ms: int, first_user: int) -> float:
            key_list = place_keys(room_keys(sale_id))
            now_ms = int(time.time() * 1000)
            started = time.perf_counter()
            for start in range(0, args.users, args.batch):
                pipe = redis.pipeline(transaction=False)
                for user in range(
                    first_user + start, first_user + min(args.users, start + args.batch)
                ):
                    place(
                        keys=key_list,
                        args=[
                            "join",
                            user,
                            now_ms - 3_600_000,
                            starts_ms,
                            now_ms + 7_200_000,
                            "0",
                            repr(random.random()),
                            "",
                            120_000,
                            "0",
                            1,
                        ],
                        client=pipe,
                    )
                pipe.execute()
            return time.perf_counter() - started

        now_ms = int(time.time() * 1000)
        # Shopper ids as a big shop has them: 8-digit numbers.
        base = used()
        seconds = join_all("11111111-1111-1111-1111-111111111111", now_ms + 3_600_000, 10_000_000)
        pre = used() - base
        base = used()
        seconds_post = join_all("22222222-2222-2222-2222-222222222222", now_ms - 1000, 30_000_000)
        post = used() - base
        n = args.users
        print(
            f"joins before the start (random draw, sorted set): {n:,} shoppers, "
            f"{pre / n:.1f} bytes each, {n / seconds:,.0f} joins/s through Lua"
        )
        print(
            f"joins after the start (tickets, hash):            {n:,} shoppers, "
            f"{post / n:.1f} bytes each, {n / seconds_post:,.0f} joins/s through Lua"
        )
        for label, per in (("all before the start", pre / n), ("all after the start", post / n)):
            print(f"10,000,000 waiting, {label}: {per * 10_000_000 / 2**30:.2f} GiB")
        info = redis.info("memory")
        print(
            f"used_memory_human={info['used_memory_human']} "
            f"mem_fragmentation_ratio={info.get('mem_fragmentation_ratio')}"
        )
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
