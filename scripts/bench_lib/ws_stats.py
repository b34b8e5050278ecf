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
    the time until its first and its last client had it (a broadcast some client never got
    counts as missed).

    A message is a delivery of broadcast ``seq`` only when it carries that broadcast's send
    time: the state a socket is sent on connect is the sale's latest broadcast, which may be
    one of an earlier measurement (same sequence numbers, sent seconds before), and counts
    as ``stale``, not as a delivery."""
    times: array = received["receive_times"]
    seqs: array = received["seqs"]
    sent_ats: array = received["sent_ats"]
    start, end = sent[0], sent[-1] + interval
    count = len(sent)
    latencies = []
    in_window = stale = 0
    per_seq_max: dict[int, float] = {}
    per_seq_min: dict[int, float] = {}
    per_seq_count: dict[int, int] = {}
    for seq, sent_at, at in zip(seqs, sent_ats, times, strict=True):
        if not (0 <= seq < count and sent[seq] == sent_at):
            stale += 1
            continue
        latency = at - sent_at
        latencies.append(latency)
        if start <= at < end:
            in_window += 1
        per_seq_count[seq] = per_seq_count.get(seq, 0) + 1
        if latency > per_seq_max.get(seq, -1.0):
            per_seq_max[seq] = latency
        if latency < per_seq_min.get(seq, float("inf")):
            per_seq_min[seq] = latency
    complete = [per_seq_max[s] for s in range(count) if per_seq_count.get(s) == connections]
    firsts = [per_seq_min[s] for s in range(count) if s in per_seq_min]
    expected = count * connections
    return {
        "connections": connections,
        "broadcasts": count,
        "expected": expected,
        "delivered": len(latencies),
        "missed": expected - len(latencies),
        "stale": stale,
        "in_window": in_window,
        "msgs_per_s": in_window / (end - start),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (max(latencies) if latencies else float("nan")) * 1000,
        # publish to the first socket: the publish, the channel layer, the server's wake-up
        "first_client_p50_ms": percentile(firsts, 0.50) * 1000,
        "first_client_p99_ms": percentile(firsts, 0.99) * 1000,
        "broadcasts_complete": len(complete),
        "last_client_p50_ms": (statistics.median(complete) if complete else float("nan")) * 1000,
        "last_client_p99_ms": percentile(complete, 0.99) * 1000,
        "last_client_max_ms": (max(complete) if complete else float("nan")) * 1000,
        "client_cpu_s": received["cpu_seconds"],
        "open_at_end": received["open_at_end"],
        "server_closes": received["server_closes"],
        "compressed": received["compressed"],
    }


def histogram_quantile(buckets: dict[float, float], count: float, fraction: float) -> float:
    """The upper bound of the bucket holding the ``fraction`` quantile of a histogram's
    cumulative ``buckets`` (upper bound -> observations at most that), as Prometheus does
    without the interpolation: "at most this"."""
    if count <= 0:
        return float("nan")
    for bound in sorted(buckets):
        if buckets[bound] >= fraction * count:
            return bound
    return float("inf")
