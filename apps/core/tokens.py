"""Signed JWTs (pyjwt): algorithm pinned, keys rotated by ``kid``, exp/nbf/iss/aud checked."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

import jwt
from django.conf import settings

from .memory import ProcessMemory

ALGORITHM = "HS256"
AUDIENCE_SHOPPER = "shopper"


class TokenInvalid(Exception):
    pass


class TokenAccountInactive(TokenInvalid):
    """A valid token of a deactivated or deleted account (apps.core.accounts)."""


@dataclass(frozen=True)
class SigningKeys:
    active_kid: str
    secrets: dict[str, str]


@lru_cache(maxsize=1)
def signing_keys() -> SigningKeys:
    """``JWT_KEYS="kid:secret,kid:secret"``: the first signs, every one verifies."""
    pairs = [p.strip() for p in settings.JWT_KEYS.split(",") if p.strip()]
    secrets: dict[str, str] = {}
    for pair in pairs:
        kid, _, secret = pair.partition(":")
        if not kid or not secret:
            raise ValueError("JWT_KEYS entries look like kid:secret")
        secrets[kid] = secret
    if not secrets:
        secrets = {"k0": settings.SECRET_KEY}
    return SigningKeys(active_kid=next(iter(secrets)), secrets=secrets)


def token_encode(claims: dict, *, audience: str, lifetime_seconds: int) -> tuple[str, int]:
    """A token and its expiry (epoch seconds)."""
    keys = signing_keys()
    now = int(time.time())
    expires = now + lifetime_seconds
    payload = {
        **claims,
        "iss": settings.JWT_ISSUER,
        "aud": audience,
        "iat": now,
        "nbf": now - 5,
        "exp": expires,
        "jti": claims.get("jti") or uuid.uuid4().hex,
    }
    token = jwt.encode(
        payload,
        keys.secrets[keys.active_kid],
        algorithm=ALGORITHM,
        headers={"kid": keys.active_kid},
    )
    return token, expires


# Verified claims per process: a token is checked once (its HMAC and claims), then
# recognised until it expires. Tokens are immutable, so this is safe; it halves the CPU of a
# request that the middleware and the view both authenticate.
_verified = ProcessMemory("verified_tokens", maxsize=100_000)


def token_decode(token: str, *, audience: str) -> dict:
    """The verified claims; TokenInvalid, or TokenAccountInactive when the token's shopper was
    deactivated or deleted since it was issued (checked on every use, in process memory)."""
    claims = _verified.get((token, audience))
    if claims is None:
        claims = _token_verify(token, audience=audience)
        _verified.set((token, audience), claims, seconds=claims["exp"] + 5 - time.time())
    _check_account(claims)
    return claims


def _check_account(claims: dict) -> None:
    from .accounts import account_is_inactive

    try:
        user_id = int(claims["sub"])
    except (KeyError, TypeError, ValueError):
        return  # not a shopper's token; the caller reads what it needs
    if account_is_inactive(user_id):
        raise TokenAccountInactive("this account is deactivated or deleted")


def _token_verify(token: str, *, audience: str) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"malformed token: {exc}") from None
    secret = signing_keys().secrets.get(header.get("kid", ""))
    if secret is None:
        raise TokenInvalid("unknown signing key")
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=settings.JWT_ISSUER,
            leeway=5,
            options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenInvalid(str(exc)) from None


def shopper_token_issue(*, user_id: int, username: str) -> tuple[str, int]:
    return token_encode(
        {"sub": str(user_id), "name": username},
        audience=AUDIENCE_SHOPPER,
        lifetime_seconds=settings.USER_TOKEN_SECONDS,
    )
