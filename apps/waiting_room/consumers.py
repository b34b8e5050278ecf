"""``/ws/sales/{id}/``: the sale's live state for everyone watching it, and, to the shopper
on this connection only, their admission once their rank is reached.

A plain ASGI application rather than a Channels consumer, because a broadcast reaches every
socket: one ``SaleFeed`` per sale per process holds the process's single channel-layer
subscription to the sale's group and writes the broadcast, encoded once, to each of its
sockets in turn. Nothing runs per socket on a broadcast but that write: no thread hop (a
consumer's dispatch hops to a worker thread before every handler to close old database
connections) and no Redis call. A shopper is looked up in Redis only when the public counter
reaches their rank, or once when the sale starts for a place drawn at the start (rank 0)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
import weakref
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from apps.core import metrics
from apps.core.errors import ApplicationError
from apps.core.redis import RedisError
from apps.core.tokens import AUDIENCE_SHOPPER, TokenInvalid, token_decode
from apps.sales.selectors import sale_snapshot

from .frames import DirectWriter, text_frame
from .selectors import room_now_serving
from .services import sale_group, waiting_room_position

logger = logging.getLogger(__name__)

CLOSE_NOT_FOUND = 4404
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# A shopper not (yet) in the queue is looked up again after this, then less and less often.
RECHECK_SECONDS = 5.0
RECHECK_LONGEST_SECONDS = 60.0
# A place drawn at the start is looked up once the sale has started, spread over this long.
DRAW_SPREAD_SECONDS = 1.0
# A sale's feed stays subscribed this long after its last watcher left.
LINGER_SECONDS = 30.0


class Watcher:
    """One socket watching a sale; ``user_id`` set when it authenticated as a shopper."""

    def __init__(self, send, sale, user_id: int | None):
        self.send, self.sale, self.user_id = send, sale, user_id
        self.rank: int | None = None
        self.admitted = False
        self.recheck_at = 0.0
        self.recheck_seconds = RECHECK_SECONDS
        self.lookup: asyncio.Task | None = None
        self.direct: DirectWriter | None = None  # set once the socket is accepted

    async def send_json(self, content: dict) -> None:
        await self.send({"type": "websocket.send", "text": json.dumps(content)})

    def heard(self, message: dict) -> None:
        """After a broadcast: look the shopper up only when the counter says it may be time."""
        if self.user_id is None or self.admitted or self.lookup is not None:
            return
        if self.rank is None:
            if time.monotonic() < self.recheck_at:
                return
            delay = 0.0
        elif self.rank == 0:
            # Drawn at the start: the place exists once the sale has started.
            if message.get("phase") in (None, "scheduled") or time.monotonic() < self.recheck_at:
                return
            delay = random.uniform(0, DRAW_SPREAD_SECONDS)  # not every socket at once
        else:
            serving = message.get("now_serving")
            if serving is None or serving < self.rank:
                return
            delay = 0.0
        self.lookup = asyncio.ensure_future(self._lookup(delay))

    async def _lookup(self, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            await self.follow_queue()
        finally:
            self.lookup = None

    async def follow_queue(self) -> None:
        try:
            place = await _redis_call(waiting_room_position)(
                sale=self.sale, user_id=self.user_id, claim=True
            )
        except (ApplicationError, RedisError):
            self.rank = None
            self.recheck_at = time.monotonic() + self.recheck_seconds
            self.recheck_seconds = min(RECHECK_LONGEST_SECONDS, self.recheck_seconds * 2)
            return
        self.rank = place["rank"]
        self.recheck_seconds = RECHECK_SECONDS
        if self.rank == 0:
            self.recheck_at = time.monotonic() + DRAW_SPREAD_SECONDS
        if place["status"] == "ready" and "admission_token" in place:
            self.admitted = True
            await self.send_json(
                {
                    "type": "admission",
                    "admission_token": place["admission_token"],
                    "expires_at": place["admission_expires_at"],
                }
            )
        else:
            await self.send_json({"type": "queue", **place})

    def stop(self) -> None:
        if self.lookup is not None:
            self.lookup.cancel()


class SaleFeed:
    """A sale's broadcasts in this process: one subscription, fanned out to its watchers.

    It outlives its last watcher by LINGER_SECONDS (a page reload finds it subscribed), and
    a new feed for the sale starts only after a stopping one has left the group: the channel
    layer's subscription to a group is one per process, and dropping it late would silence
    the new feed.

    Broadcasts are received and written by two tasks: while a fan-out is being written, the
    broadcasts that arrive replace each other, and the next fan-out writes the latest only
    (each is the sale's whole state). A process short of CPU then delivers late by one
    fan-out at most instead of working through a backlog that only grows."""

    def __init__(self, sale_id: str, feeds: dict[str, SaleFeed]):
        self.sale_id, self.feeds = sale_id, feeds
        self.watchers: dict[Watcher, None] = {}  # in the order they connected
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.stopping = False
        self.linger: asyncio.TimerHandle | None = None
        self.last_text: str | None = None  # the latest broadcast, and when it came
        self.last_at = float("-inf")
        self.reading: asyncio.Future | None = None
        self.pending: dict | None = None  # the latest broadcast not yet written
        self.arrived = asyncio.Event()
        self.task = asyncio.ensure_future(self._run())

    async def join(self, watcher: Watcher) -> None:
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None
        self.watchers[watcher] = None
        await asyncio.shield(self.ready)

    def leave(self, watcher: Watcher) -> None:
        self.watchers.pop(watcher, None)
        watcher.stop()
        if not self.watchers and not self.stopping and self.linger is None:
            self.linger = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._idle)

    def _idle(self) -> None:
        self.linger = None
        if not self.watchers:
            self.stopping = True
            self.task.cancel()

    async def _run(self) -> None:
        layer = get_channel_layer()
        group = sale_group(self.sale_id)
        channel = None
        try:
            channel = await layer.new_channel()
            await layer.group_add(group, channel)
            self.ready.set_result(None)
            receiving = asyncio.ensure_future(self._receive(layer, channel))
            writing = asyncio.ensure_future(self._write())
            try:  # both run until cancelled, or until one fails
                done, _ = await asyncio.wait(
                    (receiving, writing), return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()
            finally:  # the receive's own clean-up (unsubscribing) done before leaving
                receiving.cancel()
                writing.cancel()
                await asyncio.wait((receiving, writing))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("the live feed of sale %s stopped", self.sale_id)
            self.stopping = True
            self._unready(exc)
            for watcher in list(self.watchers):  # their sockets close; pages reconnect
                with contextlib.suppress(Exception):
                    await watcher.send({"type": "websocket.close", "code": 1011})
        finally:
            self.stopping = True
            self._unready(RuntimeError("the feed stopped"))
            if channel is not None:
                with contextlib.suppress(Exception):
                    await layer.group_discard(group, channel)
            if self.feeds.get(self.sale_id) is self:
                del self.feeds[self.sale_id]

    async def _receive(self, layer, channel: str) -> None:
        while True:
            event = await layer.receive(channel)
            if event.get("type") == "sale.update":
                if self.pending is not None:
                    metrics.websocket_broadcasts_skipped.inc()
                self.pending = event
                self.arrived.set()

    async def _write(self) -> None:
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            event, self.pending = self.pending, None
            if event is not None:
                await self.fan_out(event)

    def _unready(self, exc: BaseException) -> None:
        """Joiners still waiting for the subscription get ``exc`` (nobody else needs it)."""
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # retrieved: not logged when no joiner waits

    async def state(self, sale) -> str | None:
        """The sale's state for a socket that just connected: the latest broadcast while the
        releaser keeps broadcasting (no Redis call), else read once for all who ask at the
        same moment. None when Redis is away (the next broadcast brings it)."""
        if time.monotonic() - self.last_at <= settings.WAITING_ROOM_HEARTBEAT_SECONDS + 1:
            return self.last_text
        if self.reading is None:
            self.reading = asyncio.ensure_future(self._read_state(sale))
        reading = self.reading
        try:
            return await asyncio.shield(reading)
        finally:
            if self.reading is reading and reading.done():
                self.reading = None

    async def _read_state(self, sale) -> str | None:
        try:
            state = await _redis_call(room_now_serving)(sale)
        except RedisError:
            return None
        return json.dumps(
            {"type": "sale", "sale_id": self.sale_id, "phase": state["status"], **state}
        )

    async def fan_out(self, event: dict) -> None:
        """Write the broadcast to every socket, starting at a socket drawn at random: the
        last socket waits for all the writes before it, and not always the same one does."""
        started = time.perf_counter()
        message = event["sale"]
        text = event.get("text") or json.dumps(message)
        self.last_text, self.last_at = text, time.monotonic()
        frame = {"type": "websocket.send", "text": text}
        raw = None  # the same frame for every socket, built once (frames.py)
        watchers = tuple(self.watchers)
        if len(watchers) > 1:
            first = random.randrange(len(watchers))
            watchers = watchers[first:] + watchers[:first]
        for watcher in watchers:
            direct = watcher.direct
            if direct is not None:
                if raw is None:
                    raw = text_frame(text.encode())
                written = direct.write(raw)
            else:
                written = False
            if not written:
                try:
                    await watcher.send(frame)
                except Exception:  # the socket is gone; its disconnect removes it
                    continue
            if watcher.user_id is not None:
                watcher.heard(message)
        metrics.websocket_broadcast_duration.observe(time.perf_counter() - started)


def _redis_call(function):
    """``function`` (Redis only, no ORM) on the default executor's threads: connects of many
    sockets at once do not queue behind each other on the one thread-sensitive thread."""
    return sync_to_async(function, thread_sensitive=False)


# Sales known to this process, for SALE_SNAPSHOT_SECONDS (as sale_snapshot's own memory):
# a crowd connecting to one sale costs no thread hop each.
_sales: dict[str, tuple[float, object]] = {}
_SALES_MAX = 1000


async def _sale(sale_id: str):
    known = _sales.get(sale_id)
    now = time.monotonic()
    if known is not None and now - known[0] < settings.SALE_SNAPSHOT_SECONDS:
        return known[1]
    sale = await database_sync_to_async(sale_snapshot)(sale_id)
    if sale is not None and settings.SALE_SNAPSHOT_SECONDS > 0:
        if len(_sales) >= _SALES_MAX:
            _sales.clear()
        _sales[sale_id] = (now, sale)
    return sale


# Feeds by event loop (tests run each scenario in a loop of its own), then by sale.
_feeds: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def sale_feed(sale_id: str) -> SaleFeed:
    feeds = _feeds.setdefault(asyncio.get_running_loop(), {})
    while True:
        feed = feeds.get(sale_id)
        if feed is None:
            feed = feeds[sale_id] = SaleFeed(sale_id, feeds)
            return feed
        if not feed.stopping:
            return feed
        await asyncio.wait([feed.task])  # until it has left the group


def _shopper_id(scope: dict, query: dict) -> int | None:
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        return int(user.pk)
    token = (query.get("token") or [None])[0]
    if not token:
        return None
    claims = token_decode(token, audience=AUDIENCE_SHOPPER)
    try:
        return int(claims["sub"])
    except (KeyError, ValueError):
        raise TokenInvalid("no subject") from None


async def _close(send, code: int) -> None:
    await send({"type": "websocket.close", "code": code})


async def sale_stream(scope, receive, send) -> None:
    """The ASGI application of ``/ws/sales/{id}/`` (behind the origin check and the auth
    stack of flashsale/asgi.py)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    sale_id = str(scope["url_route"]["kwargs"]["sale_id"])
    try:
        uuid.UUID(sale_id)
    except ValueError:
        return await _close(send, CLOSE_NOT_FOUND)
    sale = await _sale(sale_id)
    if sale is None:
        return await _close(send, CLOSE_NOT_FOUND)
    query = parse_qs(scope.get("query_string", b"").decode())
    try:
        user_id = _shopper_id(scope, query)
    except TokenInvalid:
        return await _close(send, CLOSE_UNAUTHENTICATED)
    asked_for = (query.get("user_id") or [None])[0]
    if asked_for is not None and asked_for != str(user_id):
        # Admissions go only to the shopper this connection authenticated as.
        return await _close(send, CLOSE_FORBIDDEN)
    watcher = Watcher(send, sale, user_id)
    feed = await sale_feed(sale_id)
    try:
        await feed.join(watcher)
    except Exception:
        feed.leave(watcher)
        return await _close(send, 1011)
    metrics.websocket_connections.labels("sale").inc()
    try:
        await send({"type": "websocket.accept"})
        watcher.direct = DirectWriter.of(send) if settings.WS_DIRECT_FRAMES else None
        state = await feed.state(sale)
        if state is not None:
            await send({"type": "websocket.send", "text": state})
        if user_id is not None:
            await watcher.follow_queue()
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] == "websocket.receive" and await _received(watcher, message):
                return
    finally:
        feed.leave(watcher)
        metrics.websocket_connections.labels("sale").dec()


async def _received(watcher: Watcher, message: dict) -> bool:
    """A message from the page: a (re)subscription to the shopper's own admission. True when
    the socket was closed."""
    try:
        content = json.loads(message.get("text") or message.get("bytes") or b"null")
    except ValueError:
        return False
    if not isinstance(content, dict):
        return False
    asked_for = content.get("user_id")
    if content.get("type") == "subscribe" or asked_for is not None:
        if asked_for is not None and str(asked_for) != str(watcher.user_id):
            await watcher.send_json(
                {
                    "type": "error",
                    "error": "forbidden",
                    "detail": "You can only follow your own admission.",
                }
            )
            await _close(watcher.send, CLOSE_FORBIDDEN)
            return True
        if watcher.user_id is not None:
            await watcher.follow_queue()
    return False
