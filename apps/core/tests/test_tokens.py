"""Tokens: HS256 pinned, rotation by kid, every claim checked, interchangeable with any JWT
library; and a request's Bearer token is verified once, however many layers read it."""

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest
from django.conf import settings

from apps.core import tokens
from apps.core.tokens import (
    TokenInvalid,
    TokenMalformed,
    shopper_token_issue,
    signing_keys,
    token_decode,
    token_encode,
)
from conftest import admitted, bearer


def _b64(part) -> str:
    raw = part if isinstance(part, bytes) else json.dumps(part).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {
        "sub": "7",
        "iss": settings.JWT_ISSUER,
        "aud": "shopper",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 60,
        "jti": "j1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims: dict, *, secret: bytes | None = None, kid: str | None = None) -> str:
    keys = signing_keys()
    kid = kid or keys.active_kid
    return jwt.encode(claims, secret or keys.secrets[kid], algorithm="HS256", headers={"kid": kid})


def test_a_token_round_trips_and_reads_with_any_jwt_library():
    token, expires = shopper_token_issue(user_id=7, username="ann")
    claims = token_decode(token, audience="shopper")
    assert claims["sub"] == "7" and claims["name"] == "ann" and claims["exp"] == expires
    keys = signing_keys()
    assert jwt.get_unverified_header(token) == {
        "alg": "HS256",
        "kid": keys.active_kid,
        "typ": "JWT",
    }
    read = jwt.decode(
        token, keys.secrets[keys.active_kid], algorithms=["HS256"], audience="shopper"
    )
    assert read == claims
    # ...and a token another library signed with our key reads here.
    assert token_decode(_signed(_claims()), audience="shopper")["sub"] == "7"


def test_every_key_verifies_and_the_first_signs(settings):
    settings.JWT_KEYS = "new:" + "n" * 40 + ",old:" + "o" * 40
    signing_keys.cache_clear()
    try:
        token, _ = token_encode({"sub": "1"}, audience="shopper", lifetime_seconds=60)
        assert jwt.get_unverified_header(token)["kid"] == "new"
        old = _signed(_claims(), kid="old")
        assert token_decode(old, audience="shopper")["sub"] == "7"
        with pytest.raises(TokenInvalid, match="unknown signing key"):
            token_decode(_signed(_claims(), secret=b"r" * 40, kid="retired"), audience="shopper")
    finally:
        signing_keys.cache_clear()


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": -60},  # expired (beyond the leeway); times are seconds from now
        {"nbf": 60},  # not yet valid
        {"iat": 60},  # issued in the future
        {"iss": "someone-else"},
        {"aud": "admission"},
        {"aud": ["shopper", "admission"]},
        {"exp": "soon"},
        {"sub": 7},
        {"jti": None},
        {"sub": None},
    ],
)
def test_a_claim_out_of_place_is_refused(overrides):
    now = int(time.time())
    relative = {"exp", "nbf", "iat"}
    claims = _claims(
        **{k: now + v if k in relative and isinstance(v, int) else v for k, v in overrides.items()}
    )
    with pytest.raises(TokenInvalid) as refused:
        token_decode(_signed(claims), audience="shopper")
    assert not isinstance(refused.value, TokenMalformed)


def test_forgeries_are_refused():
    good = _signed(_claims())
    header, payload, signature = good.split(".")
    forged_payload = _b64(_claims(sub="8"))
    with pytest.raises(TokenInvalid, match="Signature"):
        token_decode(f"{header}.{forged_payload}.{signature}", audience="shopper")
    with pytest.raises(TokenInvalid, match="Signature"):
        token_decode(_signed(_claims(), secret=b"x" * 40), audience="shopper")
    for alg in ("none", "HS512", "RS256"):
        other = _b64({"alg": alg, "typ": "JWT", "kid": signing_keys().active_kid})
        with pytest.raises(TokenInvalid, match="alg"):
            token_decode(
                f"{other}.{payload}.{signature if alg != 'none' else ''}", audience="shopper"
            )


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!!.e30.x", "e30.e30.!!!", "W10.e30.", "é.e30.x", "e30.e30.x"],
)
def test_what_is_not_a_jwt_is_malformed_or_invalid(token):
    with pytest.raises(TokenInvalid):
        token_decode(token, audience="shopper")


def test_not_a_jwt_is_told_apart_from_a_forgery():
    with pytest.raises(TokenMalformed):
        token_decode("not-a-jwt", audience="shopper")
    with pytest.raises(TokenMalformed):
        token_decode("W10.e30.", audience="shopper")  # the header is a list


def _count_verifications(monkeypatch) -> list:
    calls = []
    verify = tokens._token_verify

    def counted(token, **kwargs):
        calls.append(token)
        return verify(token, **kwargs)

    monkeypatch.setattr(tokens, "_token_verify", counted)
    return calls


@pytest.mark.django_db
def test_a_purchase_verifies_its_token_once(client, monkeypatch, make_sale, shopper):
    """The protection middleware (rate limits, block list) and the view read the same token:
    it is verified once per request, with no per-process memory of tokens."""
    sale = make_sale(inventory=3)
    authorization = admitted(shopper, sale)["HTTP_AUTHORIZATION"]
    calls = _count_verifications(monkeypatch)
    for key in ("a", "a"):  # a success, then its replay: each request verifies once
        response = client.post(
            f"/api/v1/flash_sales/{sale.id}/purchase",
            data=json.dumps({"quantity": 1}),
            content_type="application/json",
            HTTP_X_IDEMPOTENCY_KEY=key,
            HTTP_AUTHORIZATION=authorization,
        )
        assert response.status_code in (200, 201), response.content
    assert len(calls) == 2


@pytest.mark.django_db
def test_a_waiting_room_join_and_poll_verify_their_token_once(
    client, monkeypatch, make_sale, shopper
):
    sale = make_sale(
        inventory=3, starts_in=timedelta(minutes=5), pow_difficulty=0, pre_queue_minutes=15
    )
    calls = _count_verifications(monkeypatch)
    joined = client.post(
        f"/api/v1/flash_sales/{sale.id}/waiting_room",
        data="{}",
        content_type="application/json",
        **bearer(shopper),
    )
    assert joined.status_code == 200, joined.content
    polled = client.get(f"/api/v1/flash_sales/{sale.id}/waiting_room/position", **bearer(shopper))
    assert polled.status_code == 200, polled.content
    assert len(calls) == 2
