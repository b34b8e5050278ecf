"""Figures of one ws bench run from what the load client received (scripts/bench_lib/ws_load.py)."""

from __future__ import annotations

import statistics
import time
from array import array
from collections.abc import Callable


def percentile(values, fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def publish_at(rate_hz: float, seconds: float, publish: Callable[[int, float], None]) -> list:
    """Call ``publish(seq, sent_at)`` ``rate_hz`` times a second for ``seconds``; the send
    times, by sequence number."""
    sent = []
    interval = 1 / rate_hz
    next_at = time.monotonic()
    for seq in range(int(seconds * rate_hz)):
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        at = time.time()
        publish(seq, at)
        sent.append(at)
        next_at += interval
    return sent


def figures(received: dict, sent: list[float], connections: int, interval: float) -> dict:
    """Delivery rate within the publishing window, per-message latency, and per broadcast
    the time until its last client had it (a broadcast some client never got counts as
    missed)."""
    times: array = received["receive_times"]
    latencies: array = received["latencies"]
    seqs: array = received["seqs"]
    start, end = sent[0], sent[-1] + interval
    in_window = sum(1 for t in times if start <= t < end)
    per_seq_max: dict[int, float] = {}
    per_seq_count: dict[int, int] = {}
    for seq, latency in zip(seqs, latencies, strict=True):
        per_seq_count[seq] = per_seq_count.get(seq, 0) + 1
        if latency > per_seq_max.get(seq, -1.0):
            per_seq_max[seq] = latency
    complete = [per_seq_max[s] for s in range(len(sent)) if per_seq_count.get(s) == connections]
    expected = len(sent) * connections
    return {
        "connections": connections,
        "broadcasts": len(sent),
        "expected": expected,
        "delivered": len(latencies),
        "missed": expected - len(latencies),
        "in_window": in_window,
        "msgs_per_s": in_window / (end - start),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (max(latencies) if latencies else float("nan")) * 1000,
        "broadcasts_complete": len(complete),
        "last_client_p50_ms": (statistics.median(complete) if complete else float("nan")) * 1000,
        "last_client_p99_ms": percentile(complete, 0.99) * 1000,
        "last_client_max_ms": (max(complete) if complete else float("nan")) * 1000,
        "client_cpu_s": received["cpu_seconds"],
        "open_at_end": received["open_at_end"],
        "server_closes": received["server_closes"],
        "compressed": received["compressed"],
    }
