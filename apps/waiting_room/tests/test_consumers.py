"""``/ws/sales/{id}/`` through the project's ASGI application (origin check, auth stack,
router) with channels' WebsocketCommunicator and the real Redis pub/sub channel layer."""

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from apps.core.tokens import shopper_token_issue
from apps.waiting_room.services import sale_broadcast, sale_message, waiting_room_join
from apps.waiting_room.tokens import admission_decode
from flashsale.asgi import application

from .helpers import PRE_QUEUE, room, snapshot, tick

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = [(b"origin", b"http://127.0.0.1:8000")]


def socket(sale, user=None, extra=""):
    query = ""
    if user is not None:
        token, _ = shopper_token_issue(user_id=user.id, username=user.username)
        query = f"?token={token}"
    if extra:
        query += ("&" if query else "?") + extra
    return WebsocketCommunicator(application, f"/ws/sales/{sale.id}/{query}", headers=ORIGIN)


async def drain(communicator, seconds: float) -> list[dict]:
    """Everything the socket sends within ``seconds`` (receive_nothing polls without the
    timeout that would cancel the application)."""
    messages = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await communicator.receive_nothing(timeout=0.05, interval=0.01):
            continue
        messages.append(await communicator.receive_json_from(timeout=2))
    return messages


def test_connect_sends_the_sale_state(make_sale):
    sale = make_sale(inventory=7, **PRE_QUEUE)

    async def scenario():
        communicator = socket(sale)
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_json_from(timeout=3)
        await communicator.disconnect()
        return first

    first = async_to_sync(scenario)()
    assert first["type"] == "sale" and first["status"] == "live" and first["phase"] == "live"
    assert first["units_left"] == 7 and first["now_serving"] == 0


def test_counter_updates_are_coalesced(make_sale):
    """40 changes of the counter within a second reach a watcher as at most ~5 messages
    (one per 0.25 s), and the last state always arrives."""
    sale = make_sale(inventory=100, **PRE_QUEUE)
    sale_room = room(sale)

    async def scenario():
        communicator = socket(sale)
        assert (await communicator.connect())[0]
        await communicator.receive_json_from(timeout=3)  # the state on connect
        state = await sync_to_async(tick)(sale_room)
        sent = 0
        for left in range(100, 60, -1):
            message = sale_message(sale_room, state) | {"units_left": left}
            sent += await sync_to_async(sale_broadcast)(sale_id=sale.id, message=message)
            await asyncio.sleep(0.025)
        await asyncio.sleep(0.3)
        # The releaser's next tick repeats the latest state once the gate reopens.
        final = sale_message(sale_room, state) | {"units_left": 61}
        sent += await sync_to_async(sale_broadcast)(sale_id=sale.id, message=final)
        received = await drain(communicator, 1.0)
        await communicator.disconnect()
        return sent, received

    sent, received = async_to_sync(scenario)()
    counters = [m["units_left"] for m in received if m["type"] == "sale"]
    print("40 changes in 1 s ->", len(counters), "messages:", counters)
    assert len(counters) == sent
    assert 2 <= len(counters) <= 7
    assert counters[-1] == 61 and counters == sorted(counters, reverse=True)


def test_admission_is_pushed_to_its_shopper_only(make_sale, make_shopper):
    sale = make_sale(inventory=10, **PRE_QUEUE)
    alice, bob = make_shopper(), make_shopper()
    snap = snapshot(sale)
    waiting_room_join(sale=snap, user_id=alice.id)
    waiting_room_join(sale=snap, user_id=bob.id)
    sale_room = room(sale, admission_rate=100_000, max_active_shoppers=1)  # one place

    async def scenario():
        a, b = socket(sale, alice), socket(sale, bob)
        assert (await a.connect())[0] and (await b.connect())[0]
        a_first = await drain(a, 0.5)
        b_first = await drain(b, 0.5)
        await sync_to_async(tick)(sale_room)
        await asyncio.sleep(0.02)  # the rate's credit (by Redis's clock) between two ticks
        state = await sync_to_async(tick)(sale_room)  # admits one: alice (rank 1)
        await sync_to_async(sale_broadcast)(sale_id=sale.id, message=sale_message(sale_room, state))
        a_then = await drain(a, 1.0)
        b_then = await drain(b, 1.0)
        await a.disconnect()
        await b.disconnect()
        return a_first, b_first, a_then, b_then

    a_first, b_first, a_then, b_then = async_to_sync(scenario)()
    assert [m["type"] for m in a_first] == ["sale", "queue"] and a_first[1]["rank"] == 1
    assert [m["type"] for m in b_first] == ["sale", "queue"] and b_first[1]["rank"] == 2
    assert [m["type"] for m in a_then] == ["sale", "admission"]
    assert a_then[0]["now_serving"] == 1
    admission = admission_decode(a_then[1]["admission_token"])
    assert admission.user_id == alice.id and admission.sale_id == str(sale.id)
    assert a_then[1]["expires_at"].endswith("Z")
    assert [m["type"] for m in b_then] == ["sale"]  # bob sees the counter, not alice's admission


def test_subscribing_to_another_shoppers_admission_is_refused(make_sale, make_shopper):
    sale = make_sale(**PRE_QUEUE)
    alice, bob = make_shopper(), make_shopper()

    async def scenario():
        by_query = socket(sale, bob, extra=f"user_id={alice.id}")
        refused_query = await by_query.connect()
        anonymous = socket(sale, None, extra=f"user_id={alice.id}")
        refused_anonymous = await anonymous.connect()
        by_message = socket(sale, bob)
        assert (await by_message.connect())[0]
        await drain(by_message, 0.3)
        await by_message.send_json_to({"type": "subscribe", "user_id": alice.id})
        error = await by_message.receive_json_from(timeout=2)
        closed = await by_message.receive_output(timeout=2)
        return refused_query, refused_anonymous, error, closed

    refused_query, refused_anonymous, error, closed = async_to_sync(scenario)()
    assert refused_query == (False, 4403)
    assert refused_anonymous == (False, 4403)
    assert error["type"] == "error" and error["error"] == "forbidden"
    assert closed == {"type": "websocket.close", "code": 4403}


def test_unknown_sale_and_bad_token_are_refused(make_sale):
    sale = make_sale(**PRE_QUEUE)

    async def scenario():
        from types import SimpleNamespace

        unknown = WebsocketCommunicator(
            application, "/ws/sales/00000000-0000-0000-0000-000000000000/", headers=ORIGIN
        )
        junk = WebsocketCommunicator(application, "/ws/sales/nope/", headers=ORIGIN)
        bad_token = socket(SimpleNamespace(id=sale.id), None, extra="token=forged")
        return await unknown.connect(), await junk.connect(), await bad_token.connect()

    unknown, junk, bad_token = async_to_sync(scenario)()
    assert unknown == (False, 4404) and junk == (False, 4404)
    assert bad_token == (False, 4401)


def test_a_signed_in_shoppers_session_authenticates_the_socket(make_sale, make_shopper, client):
    """Without a token, the session cookie says who the socket is (channels' auth stack on
    connect): the shopper may follow their own admission, not another's."""
    from django.conf import settings

    sale = make_sale(**PRE_QUEUE)
    alice, bob = make_shopper(), make_shopper()
    client.force_login(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [*ORIGIN, (b"cookie", cookie.encode())]

    async def scenario():
        own = WebsocketCommunicator(
            application, f"/ws/sales/{sale.id}/?user_id={alice.id}", headers=headers
        )
        own_connected = await own.connect()
        first = await own.receive_json_from(timeout=3)
        await own.disconnect()
        other = WebsocketCommunicator(
            application, f"/ws/sales/{sale.id}/?user_id={bob.id}", headers=headers
        )
        return own_connected, first, await other.connect()

    own_connected, first, other = async_to_sync(scenario)()
    assert own_connected == (True, None) and first["type"] == "sale"
    assert other == (False, 4403)
