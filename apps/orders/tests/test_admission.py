"""The purchase needs a valid admission token of this sale: anything else is a 403 JSON
refusal (never a 500), and an admission buys once."""

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from django.conf import settings
from django.db import connection

from apps.orders.models import Order
from apps.waiting_room.tokens import admission_token_issue
from conftest import admitted, bearer

pytestmark = pytest.mark.django_db


def buy(client, sale, authorization, key="k1", **headers):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        HTTP_AUTHORIZATION=authorization,
        **headers,
    )


def _b64(part: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def _claims(user, sale, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "sub": str(user.id),
        "sale": str(sale.id),
        "iss": settings.JWT_ISSUER,
        "aud": "admission",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 120,
        "jti": "j-forged",
    }
    claims.update(overrides)
    return claims


def refused(response, code="not_admitted"):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error"] == code and body["detail"]
    assert not Order.objects.exists()
    return body


def test_a_shopper_token_alone_is_not_admitted(client, make_sale, shopper):
    sale = make_sale(inventory=3)
    body = refused(buy(client, sale, bearer(shopper)["HTTP_AUTHORIZATION"]))
    assert body["waiting_room_url"].endswith(f"/flash_sales/{sale.id}/waiting_room")


def test_an_expired_admission_is_refused(client, make_sale, shopper):
    sale = make_sale(inventory=3)
    token, _ = admission_token_issue(
        user_id=shopper.id,
        sale_id=str(sale.id),
        lifetime_seconds=0,
        expires_at=int(time.time()) - 60,
    )
    refused(buy(client, sale, f"Bearer {token}"))


def test_a_token_signed_with_another_key_is_refused(client, make_sale, shopper):
    sale = make_sale(inventory=3)
    kid = next(iter(settings.JWT_KEYS.split(","))).partition(":")[0] or "k0"
    forged = jwt.encode(_claims(shopper, sale), "not-our-secret-" * 3, headers={"kid": kid})
    refused(buy(client, sale, f"Bearer {forged}"))
    unknown_kid = jwt.encode(_claims(shopper, sale), "x" * 40, headers={"kid": "stolen"})
    refused(buy(client, sale, f"Bearer {unknown_kid}"))


def test_an_unsigned_alg_none_token_is_refused(client, make_sale, shopper):
    sale = make_sale(inventory=3)
    header = {"alg": "none", "typ": "JWT", "kid": "k0"}
    unsigned = f"{_b64(header)}.{_b64(_claims(shopper, sale))}."
    refused(buy(client, sale, f"Bearer {unsigned}"))


def test_another_sales_admission_is_refused(client, make_sale, shopper):
    sale, other = make_sale(inventory=3), make_sale(inventory=3)
    refused(buy(client, sale, admitted(shopper, other)["HTTP_AUTHORIZATION"]))


def test_another_shoppers_admission_is_refused_when_the_shopper_is_named(
    client, make_sale, make_shopper
):
    sale = make_sale(inventory=3)
    alice, mallory = make_shopper(), make_shopper()
    alices = admitted(alice, sale)["HTTP_AUTHORIZATION"]
    mallorys_token = bearer(mallory)["HTTP_AUTHORIZATION"].split()[1]
    refused(buy(client, sale, alices, HTTP_X_SHOPPER_TOKEN=mallorys_token))
    refused(buy(client, sale, alices, HTTP_X_SHOPPER_TOKEN="garbage"))
    ok = buy(client, sale, alices, HTTP_X_SHOPPER_TOKEN=bearer(alice)["HTTP_AUTHORIZATION"][7:])
    assert ok.status_code == 201
    assert Order.objects.get().user_id == alice.id


def test_an_admission_buys_once_but_its_replay_still_answers(client, make_sale, shopper):
    sale = make_sale(inventory=5, max_per_user=3)
    authorization = admitted(shopper, sale)["HTTP_AUTHORIZATION"]
    first = buy(client, sale, authorization, key="a")
    assert first.status_code == 201, first.content
    replay = buy(client, sale, authorization, key="a")
    assert replay.status_code == 200 and replay.json() == first.json()
    again = buy(client, sale, authorization, key="b")
    assert again.status_code == 403 and again.json()["error"] == "admission_used"
    assert Order.objects.count() == 1
    # A fresh admission may buy again (within the per-shopper limit).
    assert (
        buy(client, sale, admitted(shopper, sale)["HTTP_AUTHORIZATION"], key="c").status_code == 201
    )


def test_a_refused_purchase_does_not_spend_the_admission(client, make_sale, make_shopper):
    sale = make_sale(inventory=1)
    buyer, late = make_shopper(), make_shopper()
    assert buy(client, sale, admitted(buyer, sale)["HTTP_AUTHORIZATION"]).status_code == 201
    authorization = admitted(late, sale)["HTTP_AUTHORIZATION"]
    assert buy(client, sale, authorization, key="x").status_code == 410
    # Sold out is not a use: the same admission gets the same honest answer, not a 403.
    assert buy(client, sale, authorization, key="y").status_code == 410


@pytest.mark.django_db(transaction=True)
def test_one_admission_raced_with_many_keys_buys_once(make_sale, shopper):
    from django.test import Client

    sale = make_sale(inventory=20, max_per_user=20)
    authorization = admitted(shopper, sale)["HTTP_AUTHORIZATION"]

    def attempt(i):
        try:
            return buy(Client(), sale, authorization, key=f"k{i}").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        # 8 attempts: under the per-shopper purchase rate limit (10/s), so none is a 429.
        codes = sorted(pool.map(attempt, range(8)))
    assert codes.count(201) == 1 and codes.count(403) == 7, codes
    assert Order.objects.filter(sale=sale).count() == 1


@pytest.mark.parametrize(
    "authorization",
    ["Bearer a.b.c", "Bearer ....", "Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer " + "x" * 5000],
)
def test_garbage_tokens_are_4xx_json(client, make_sale, authorization):
    sale = make_sale()
    response = buy(client, sale, authorization)
    assert response.status_code in (401, 403)
    assert response.json()["error"] in {"invalid_token", "not_admitted"}
