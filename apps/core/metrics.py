"""Prometheus metrics written by every process of a node (web workers, ws, Celery worker,
beat, releaser). With PROMETHEUS_MULTIPROC_DIR set, each process writes its own files there and
one scrape of /metrics adds them up, so a respawned granian worker neither resets nor splits a
counter (prometheus_client's multiprocess mode). Without it, a process counts for itself.

Labels never carry a sale id, a user id or a raw path: routes are Django's URL patterns,
outcomes and reasons are short fixed lists. Per-sale figures (queue, units left) are read at
scrape time for the few live sales only (apps.operations.collectors)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# OpenTelemetry's advised buckets for http.server.request.duration (seconds).
HTTP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

http_server_request_duration = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests (OpenTelemetry http.server.request.duration).",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=HTTP_DURATION_BUCKETS,
)
purchase_attempts = Counter(
    "flashsale_purchase_attempts_total",
    "Purchase requests by outcome (reserved, replayed, or the refusal's error code).",
    ["outcome"],
)
refusals = Counter(
    "flashsale_refusals_total",
    "Requests refused, by the error code the client got (rate_limited, not_admitted, "
    "sold_out, bot_suspected, blocked, overloaded, ...): a fixed set written in the code.",
    ["reason"],
)
waiting_room_joins = Counter(
    "flashsale_waiting_room_joins_total", "Waiting-room joins answered, by outcome.", ["outcome"]
)
payment_outcomes = Counter(
    "flashsale_payment_outcomes_total",
    "Payment attempts at the gateway by outcome (succeeded, declined, retried, failed, "
    "dead_lettered, refunded).",
    ["outcome"],
)
reconciliation_corrections = Counter(
    "flashsale_reconciliation_corrections_total",
    "Corrections made by the reconciliation jobs, by kind.",
    ["kind"],
)
reservations_expired = Counter(
    "flashsale_reservations_expired_total", "Reservations that expired unpaid."
)
expiry_lag = Histogram(
    "flashsale_reservation_expiry_lag_seconds",
    "How long past reserved_until an expired reservation's units came back.",
    buckets=(0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300),
)
websocket_connections = Gauge(
    "flashsale_websocket_connections",
    "Open WebSocket connections, by route (the sum over live ws processes).",
    ["route"],
    multiprocess_mode="livesum",
)
websocket_broadcast_duration = Histogram(
    "flashsale_websocket_broadcast_seconds",
    "How long a ws process took to write one sale broadcast to all its sockets: what its "
    "last socket waited on the server. Near the broadcast interval, the process is full.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5),
)
websocket_broadcasts_skipped = Counter(
    "flashsale_websocket_broadcasts_skipped_total",
    "Sale broadcasts a ws process never wrote because a newer one arrived while it was still "
    "writing an earlier one (each is the whole state): the process is short of CPU.",
)
releaser_ticks = Counter("flashsale_releaser_ticks_total", "Waiting-room releaser ticks run.")


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def metrics_exposition(*collectors) -> tuple[bytes, str]:
    """The node's metrics in the Prometheus text format: every process's files when in
    multiprocess mode, plus the scrape-time collectors given."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    extra = CollectorRegistry()
    for collector in collectors:
        extra.register(collector)
    return generate_latest(registry) + generate_latest(extra), CONTENT_TYPE_LATEST


def process_exited(pid: int) -> None:
    """Drop a dead process's live gauges (counters and histograms keep their totals)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
