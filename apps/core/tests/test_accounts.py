"""Tokens of deactivated or deleted shoppers stop working (401 account_inactive) on the
waiting room, the purchase and the payment, without a query per request."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from apps.core import accounts
from apps.core.memory import memories_reset
from conftest import admitted, bearer

pytestmark = pytest.mark.django_db

ROOM = {"pow_difficulty": 0, "bot_policy": "off"}


def join(client, sale, headers):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/waiting_room",
        data=json.dumps({}),
        content_type="application/json",
        **headers,
    )


def purchase(client, sale, headers, key="k1"):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        **headers,
    )


def pay(client, order_id, headers):
    return client.post(
        f"/api/v1/orders/{order_id}/pay",
        data=json.dumps({"card_number": "4242424242424242"}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="pay-1",
        **headers,
    )


def assert_inactive(response):
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "account_inactive"
    assert response["Content-Type"].startswith("application/json")


@pytest.fixture
def admin_client(client, django_user_model, django_capture_on_commit_callbacks):
    """The admin, logged in; the hooks its requests leave for the commit run as they would
    (a test's transaction never commits)."""
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)

    class Committing:
        def __getattr__(self, name):
            method = getattr(client, name)

            def call(*args, **kwargs):
                with django_capture_on_commit_callbacks(execute=True):
                    return method(*args, **kwargs)

            return call

    return Committing()


def test_a_deactivated_shoppers_tokens_are_refused(admin_client, make_sale, shopper):
    from django.test import Client

    api = Client()
    sale = make_sale(inventory=5, max_per_user=2, **ROOM)
    shopper_token, admission = bearer(shopper), admitted(shopper, sale)
    assert join(api, sale, shopper_token).status_code == 200
    bought = purchase(api, sale, admission)
    assert bought.status_code == 201, bought.content
    order_id = bought.json()["order_id"]

    response = admin_client.post(
        "/admin/auth/user/",
        {"action": "deactivate_accounts", "_selected_action": [shopper.id]},
    )
    assert response.status_code == 302
    shopper.refresh_from_db()
    assert shopper.is_active is False

    assert_inactive(join(api, sale, shopper_token))
    assert_inactive(
        api.get(f"/api/v1/flash_sales/{sale.id}/waiting_room/position", **shopper_token)
    )
    assert_inactive(purchase(api, sale, admitted(shopper, sale), key="k2"))
    assert_inactive(pay(api, order_id, shopper_token))
    assert_inactive(api.get(f"/api/v1/orders/{order_id}", **shopper_token))
    # No new token either.
    token = api.post(
        "/api/v1/auth/token",
        {"username": shopper.username, "password": "pw-for-tests"},
        content_type="application/json",
    )
    assert token.status_code == 401

    admin_client.post(
        "/admin/auth/user/", {"action": "reactivate_accounts", "_selected_action": [shopper.id]}
    )
    assert join(api, sale, shopper_token).status_code == 200


def test_deactivating_in_the_admins_change_form_refuses_the_tokens(
    admin_client, make_sale, shopper
):
    sale = make_sale(**ROOM)
    form = admin_client.get(f"/admin/auth/user/{shopper.id}/change/").context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if name in form.fields and value is not None and name not in ("password", "is_active")
    }
    data.update(
        {
            "date_joined_0": shopper.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": shopper.date_joined.strftime("%H:%M:%S"),
            "groups": [],
            "user_permissions": [],
        }
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)
    response = admin_client.post(f"/admin/auth/user/{shopper.id}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    shopper.refresh_from_db()
    assert shopper.is_active is False
    assert_inactive(join(admin_client, sale, bearer(shopper)))


def test_a_deleted_shoppers_tokens_are_refused(admin_client, make_sale, shopper):
    """Before: the join went through and the purchase got a misleading 503."""
    sale = make_sale(**ROOM)
    shopper_token, admission = bearer(shopper), admitted(shopper, sale)
    response = admin_client.post(f"/admin/auth/user/{shopper.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(id=shopper.id).exists()
    assert_inactive(join(admin_client, sale, shopper_token))
    assert_inactive(purchase(admin_client, sale, admission))


def test_the_check_costs_no_query_and_another_process_sees_a_change(
    client, make_sale, shopper, django_assert_num_queries, settings
):
    """Refusals stay off PostgreSQL; a deactivation made elsewhere (a shell, another process)
    reaches this process through the beat's restore and the version in Redis."""
    sale = make_sale(**ROOM)
    headers = bearer(shopper)
    assert join(client, sale, headers).status_code == 200
    with django_assert_num_queries(0):
        assert join(client, sale, headers).status_code == 200
    get_user_model().objects.filter(id=shopper.id).update(is_active=False)  # no service
    assert accounts.inactive_accounts_restore() == 1
    memories_reset()  # as if ACCOUNT_MEMORY_SECONDS had passed elsewhere
    with django_assert_num_queries(0):
        assert_inactive(join(client, sale, headers))


def test_a_lost_set_is_rebuilt_from_postgres(
    client, make_sale, shopper, redis_client, django_capture_on_commit_callbacks
):
    sale = make_sale(**ROOM)
    with django_capture_on_commit_callbacks(execute=True):
        accounts.users_set_active(user_ids=[shopper.id], active=False)
    assert_inactive(join(client, sale, bearer(shopper)))
    redis_client.delete(accounts.INACTIVE, accounts.VERSION)  # Redis lost it
    accounts.inactive_accounts_restore()
    assert_inactive(join(client, sale, bearer(shopper)))


@pytest.mark.django_db(transaction=True)
def test_a_deactivated_shoppers_websocket_is_refused(make_sale, shopper):
    """The live queue socket with the token of a deactivated shopper closes with 4401."""
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator

    from flashsale.asgi import application

    sale = make_sale(**ROOM)
    token = bearer(shopper)["HTTP_AUTHORIZATION"].split()[1]

    async def connect():
        communicator = WebsocketCommunicator(
            application,
            f"/ws/sales/{sale.id}/?token={token}",
            headers=[(b"origin", b"http://127.0.0.1:8000")],
        )
        connected, code = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected, code

    assert async_to_sync(connect)()[0] is True
    accounts.users_set_active(user_ids=[shopper.id], active=False)  # commits here
    assert async_to_sync(connect)() == (False, 4401)
