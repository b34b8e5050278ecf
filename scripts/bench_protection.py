"""Costs of the protection layer, in-process against the real Redis: what the server pays to
verify a proof of work, what a script pays to solve one in CPython, and what the middleware adds
to a request (rate limits, block list). Prints figures; never part of the test suite.

    .venv/bin/python scripts/bench_protection.py [--difficulty 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashsale.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402


def per_call_us(fn, runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - started) / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--difficulty", type=int, default=16)
    args = parser.parse_args()
    from apps.core.redis import get_redis
    from apps.core.tokens import shopper_token_issue
    from apps.protection.middleware import ProtectionMiddleware
    from apps.protection.pow import challenge_issue, pow_solve, pow_verify

    sale_id = str(uuid.uuid4())
    solves = []
    answers = []
    for _ in range(10):
        challenge = challenge_issue(sale_id=sale_id, difficulty=args.difficulty)
        started = time.perf_counter()
        answers.append((challenge, pow_solve(challenge, args.difficulty)))
        solves.append((time.perf_counter() - started) * 1000)
    print(
        f"PoW {args.difficulty} bits solved in CPython (one core): median "
        f"{statistics.median(solves):.0f} ms, mean {statistics.fmean(solves):.0f} ms"
    )
    answers = answers * 1  # each challenge is accepted once
    started = time.perf_counter()
    for challenge, nonce in answers:
        pow_verify(sale_id=sale_id, required=args.difficulty, challenge=challenge, nonce=nonce)
    verify_us = (time.perf_counter() - started) / len(answers) * 1e6
    print(f"PoW verification on the server (signature, one hash, SET NX): {verify_us:.0f} us")

    token, _ = shopper_token_issue(user_id=1, username="bench")
    factory = RequestFactory()
    request = factory.post(
        f"/api/v1/flash_sales/{sale_id}/purchase", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    bare = ProtectionMiddleware(lambda r: HttpResponse(status=201))
    settings.RATE_LIMITS = {
        k: {**v, "user": "1000000/s", "ip": "1000000/s"} for k, v in settings.RATE_LIMITS.items()
    }
    with_limits = per_call_us(lambda: bare(request), 2000)
    settings.RATELIMIT_ENABLE = False
    without_limits = per_call_us(lambda: bare(request), 2000)
    print(
        f"middleware on a purchase: {with_limits:.0f} us with rate limits and the block list, "
        f"{without_limits:.0f} us with RATELIMIT_ENABLE=0 (block list only)"
    )
    redis = get_redis()
    for key in redis.scan_iter(match=settings.REDIS_KEY_PREFIX + "*", count=1000):
        redis.delete(key)


if __name__ == "__main__":
    main()
