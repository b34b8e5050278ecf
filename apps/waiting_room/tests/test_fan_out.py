"""A sale feed's fan-out: every socket gets each broadcast once, no socket is always written
last, and the time a broadcast took to reach the last socket is measured."""

import asyncio
import json
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.core import metrics
from apps.waiting_room import consumers
from apps.waiting_room.consumers import SaleFeed, Watcher, sale_feed
from apps.waiting_room.services import sale_group


def feed_of(count: int, written: list) -> SaleFeed:
    """A feed with ``count`` anonymous watchers whose sends go to ``written`` (no channel
    layer: only fan_out is exercised)."""
    feed = SaleFeed.__new__(SaleFeed)
    feed.sale_id = "sale"
    feed.watchers = {}
    feed.last_text, feed.last_at = None, float("-inf")
    for index in range(count):

        async def send(message, index=index):
            written.append((index, message["text"]))

        feed.watchers[Watcher(send, sale=None, user_id=None)] = None
    return feed


def broadcast(feed: SaleFeed, seq: int) -> None:
    asyncio.run(feed.fan_out({"sale": {"type": "sale", "seq": seq}}))


def test_every_socket_gets_each_broadcast_once():
    written = []
    feed = feed_of(5, written)
    for seq in range(3):
        broadcast(feed, seq)
    assert sorted(written) == sorted(
        (index, f'{{"type": "sale", "seq": {seq}}}') for index in range(5) for seq in range(3)
    )


def test_no_socket_is_always_written_first_or_last():
    written = []
    feed = feed_of(4, written)
    firsts, lasts = set(), set()
    for seq in range(40):
        written.clear()
        broadcast(feed, seq)
        firsts.add(written[0][0])
        lasts.add(written[-1][0])
    assert len(firsts) > 1 and len(lasts) > 1


def test_the_time_to_the_last_socket_is_measured():
    def observed() -> float:
        samples = metrics.websocket_broadcast_duration.collect()[0].samples
        return next(s.value for s in samples if s.name.endswith("_count"))

    before = observed()
    broadcast(feed_of(3, []), 0)
    assert observed() == before + 1


def test_broadcasts_that_arrive_during_a_fan_out_collapse_to_the_latest():
    """While a fan-out is being written, newer broadcasts replace each other: the next
    fan-out writes the latest only (through the real channel layer)."""
    sale_id = str(uuid.uuid4())
    written, first_send, release = [], None, None

    async def slow_send(message):
        written.append(json.loads(message["text"])["seq"])
        if len(written) == 1:
            first_send.set()
            await release.wait()

    def skipped() -> float:
        return metrics.websocket_broadcasts_skipped.collect()[0].samples[0].value

    async def scenario():
        nonlocal first_send, release
        first_send, release = asyncio.Event(), asyncio.Event()
        layer = get_channel_layer()
        feed = await sale_feed(sale_id)
        watcher = Watcher(slow_send, sale=None, user_id=None)
        await feed.join(watcher)
        try:

            async def publish(seq):
                message = {"type": "sale", "seq": seq}
                await layer.group_send(
                    sale_group(sale_id), {"type": "sale.update", "sale": message}
                )

            await publish(0)
            await asyncio.wait_for(first_send.wait(), 5)
            for seq in (1, 2, 3):
                await publish(seq)
            await asyncio.sleep(0.5)  # all three have arrived; the first fan-out still writes
            release.set()
            await asyncio.sleep(0.5)
        finally:
            feed.leave(watcher)
            feed.task.cancel()
            await asyncio.wait([feed.task])

    before = skipped()
    async_to_sync(scenario)()
    assert written == [0, 3]
    assert skipped() == before + 2


def test_a_feed_that_stopped_has_left_the_group_and_the_next_one_hears(monkeypatch):
    monkeypatch.setattr(consumers, "LINGER_SECONDS", 0.05)
    sale_id = str(uuid.uuid4())
    heard = []

    async def send(message):
        heard.append(json.loads(message["text"])["seq"])

    async def scenario():
        layer = get_channel_layer()
        first = await sale_feed(sale_id)
        watcher = Watcher(send, sale=None, user_id=None)
        await first.join(watcher)
        first.leave(watcher)
        done, _ = await asyncio.wait([first.task], timeout=5)  # stopped after lingering
        assert done
        second = await sale_feed(sale_id)
        assert second is not first
        watcher = Watcher(send, sale=None, user_id=None)
        await second.join(watcher)
        message = {"type": "sale", "seq": 7}
        await layer.group_send(sale_group(sale_id), {"type": "sale.update", "sale": message})
        await asyncio.sleep(0.5)
        second.leave(watcher)
        second.task.cancel()
        await asyncio.wait([second.task])

    async_to_sync(scenario)()
    assert heard == [7]
