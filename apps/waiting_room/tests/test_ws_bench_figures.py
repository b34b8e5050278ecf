"""The ws bench's bookkeeping (scripts/bench_lib/ws_stats.py): a socket's first message on
connect is the sale's latest state, which may be a broadcast of an earlier measurement (the
same sequence numbers, sent seconds earlier). It is not a delivery of this run's broadcasts:
counting it made "missed" negative and put seconds-old latencies into the p99."""

from array import array

from scripts.bench_lib.ws_stats import figures, histogram_quantile


def received(messages, cpu=(0.1, 0.1)):
    """The load client's merged result from (seq, sent_at, receive_time) triples."""
    return {
        "seqs": array("q", [m[0] for m in messages]),
        "sent_ats": array("d", [m[1] for m in messages]),
        "receive_times": array("d", [m[2] for m in messages]),
        "cpu_seconds": list(cpu),
        "open_at_end": 2,
        "server_closes": 0,
        "compressed": 0,
        "other_messages": 0,
    }


def test_a_broadcast_of_an_earlier_run_received_on_connect_is_not_counted():
    sent = [1000.0, 1000.25, 1000.5]
    earlier_run_last = (2, 990.5)  # seq 2 of the previous size, its state on connect
    messages = [(*earlier_run_last, 999.0), (*earlier_run_last, 999.1)]
    for seq, at in enumerate(sent):
        messages += [(seq, at, at + 0.010), (seq, at, at + 0.020)]

    result = figures(received(messages), sent, connections=2, interval=0.25)

    assert result["expected"] == 6
    assert result["delivered"] == 6
    assert result["missed"] == 0
    assert result["stale"] == 2
    assert result["broadcasts_complete"] == 3
    assert result["max_ms"] < 21
    assert result["last_client_max_ms"] < 21


def test_a_broadcast_some_socket_never_got_is_missed_and_not_complete():
    sent = [1000.0, 1000.25]
    messages = [(0, 1000.0, 1000.01), (0, 1000.0, 1000.02), (1, 1000.25, 1000.27)]

    result = figures(received(messages), sent, connections=2, interval=0.25)

    assert result["missed"] == 1
    assert result["broadcasts_complete"] == 1
    assert result["in_window"] == 3


def test_the_first_client_of_each_broadcast_is_timed():
    sent = [1000.0, 1000.25]
    messages = [(0, 1000.0, 1000.01), (0, 1000.0, 1000.05), (1, 1000.25, 1000.28)]
    messages.append((1, 1000.25, 1000.30))

    result = figures(received(messages), sent, connections=2, interval=0.25)

    assert round(result["first_client_p50_ms"]) in (10, 30)
    assert round(result["first_client_p99_ms"]) == 30
    assert round(result["last_client_p99_ms"]) == 50


def test_a_histograms_quantile_is_the_bound_of_its_bucket():
    buckets = {0.01: 10, 0.05: 98, 0.1: 100, float("inf"): 100}
    assert histogram_quantile(buckets, 100, 0.5) == 0.05
    assert histogram_quantile(buckets, 100, 0.99) == 0.1
