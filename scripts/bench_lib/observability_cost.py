"""What the observability middleware (request id, route, duration histogram, outcome counters)
costs per request, in-process and in Prometheus multiprocess mode, as production runs it:

    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) .venv/bin/python scripts/bench_lib/observability_cost.py

A wall-clock A/B through wrk (scripts/bench's soldout/soldout_plain, reserve/reserve_plain)
moves by ±15 % between repetitions on a shared 2-core machine; this measures the cost itself."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashsale.settings.test")

import django  # noqa: E402

django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.urls import resolve  # noqa: E402

from apps.core.errors import ApplicationError  # noqa: E402
from apps.core.http import error_response  # noqa: E402
from apps.core.middleware import ObservabilityMiddleware  # noqa: E402

N = 100_000


def per_call_us(view, request) -> float:
    started = time.perf_counter()
    for _ in range(N):
        view(request)
    return (time.perf_counter() - started) / N * 1e6


def main() -> None:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        sys.exit("set PROMETHEUS_MULTIPROC_DIR to an empty folder (multiprocess mode)")
    path = "/api/v1/flash_sales/00000000-0000-0000-0000-000000000000/purchase"
    request = RequestFactory().post(path, data=b"{}", content_type="application/json")
    request.resolver_match = resolve(path)
    reserved = HttpResponse(b"{}", status=201)
    sold_out = ApplicationError("Sold out.", code="sold_out", status=410)
    for name, view in (
        ("reserved (201)", lambda r: reserved),
        ("refused (410 sold_out)", lambda r: error_response(sold_out)),
    ):
        alone = per_call_us(view, request)
        wrapped = per_call_us(ObservabilityMiddleware(view), request)
        print(
            f"{name}: view alone {alone:.2f} µs, with the middleware {wrapped:.2f} µs, "
            f"cost {wrapped - alone:.2f} µs per request"
        )


if __name__ == "__main__":
    main()
