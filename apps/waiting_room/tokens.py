"""Admission tokens: short-lived JWTs bound to one shopper and one sale, signed with the
project's rotating keys (apps.core.tokens), verified without a database hit."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings

from apps.core.tokens import ALGORITHM, TokenInvalid, signing_keys, token_decode

AUDIENCE_ADMISSION = "admission"


@dataclass(frozen=True)
class Admission:
    user_id: int
    sale_id: str
    jti: str
    expires_at: int  # epoch seconds
    rank: int | None


def admission_token_issue(
    *,
    user_id: int,
    sale_id: str,
    lifetime_seconds: int,
    jti: str | None = None,
    expires_at: int | None = None,
    rank: int | None = None,
) -> tuple[str, int]:
    """A signed admission token and its expiry (epoch seconds). The waiting room passes the
    jti and expiry it recorded in Redis, so re-reading a place returns the same admission."""
    keys = signing_keys()
    now = int(time.time())
    expires = expires_at if expires_at is not None else now + lifetime_seconds
    payload = {
        "sub": str(user_id),
        "sale": str(sale_id),
        "iss": settings.JWT_ISSUER,
        "aud": AUDIENCE_ADMISSION,
        "iat": now,
        "nbf": now - 5,
        "exp": expires,
        "jti": jti or uuid.uuid4().hex,
    }
    if rank is not None:
        payload["rank"] = rank
    token = jwt.encode(
        payload,
        keys.secrets[keys.active_kid],
        algorithm=ALGORITHM,
        headers={"kid": keys.active_kid},
    )
    return token, expires


def admission_decode(token: str) -> Admission:
    """The admission a token grants, or TokenInvalid (wrong audience, key, algorithm, expired)."""
    claims = token_decode(token, audience=AUDIENCE_ADMISSION)
    try:
        user_id = int(claims["sub"])
        sale_id = str(claims["sale"])
        rank = claims.get("rank")
        return Admission(
            user_id=user_id,
            sale_id=sale_id,
            jti=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            rank=int(rank) if rank is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenInvalid(f"not an admission token: {exc}") from None
