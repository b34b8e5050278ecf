"""Bearer-token identity without a database hit: the token carries the shopper's id.

A request's Bearer token is verified once: the first reader (the protection middleware, for
the rate limits and the block list, or else the view) verifies it and leaves the answer on
the request, ``request.bearer``; every later reader takes it from there."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication

from .accounts import AccountInactive
from .errors import NotAuthenticated
from .tokens import (
    AUDIENCE_ADMISSION,
    AUDIENCE_SHOPPER,
    TokenAccountInactive,
    TokenInvalid,
    TokenMalformed,
    token_decode,
)

# The audiences a Bearer token may carry.
BEARER_AUDIENCES = frozenset({AUDIENCE_SHOPPER, AUDIENCE_ADMISSION})


@dataclass(frozen=True)
class TokenShopper:
    """The shopper a valid token names; enough for the hot path, no ORM row needed."""

    id: int
    username: str
    claims: dict

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False

    @property
    def pk(self) -> int:
        return self.id


@dataclass(frozen=True)
class Bearer:
    """A request's Bearer token, verified once: its claims, or why it was refused."""

    token: str | None  # None: no Bearer token was sent
    claims: dict | None = None
    error: TokenInvalid | None = None

    @property
    def audience(self) -> str | None:
        return self.claims["aud"] if self.claims else None

    @property
    def user_id(self) -> int | None:
        """The verified shopper id (a shopper or an admission token), else None."""
        if not self.claims:
            return None
        try:
            return int(self.claims["sub"])
        except (TypeError, ValueError):
            return None


def bearer_token(authorization: str) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def request_bearer(request) -> Bearer:
    """The request's Bearer token, verified on the first call and kept on the request."""
    bearer = getattr(request, "bearer", None)
    if bearer is None:
        bearer = bearer_verify(request.META.get("HTTP_AUTHORIZATION", ""))
        request.bearer = bearer
    return bearer


def bearer_verify(authorization: str) -> Bearer:
    token = bearer_token(authorization)
    if token is None:
        return Bearer(token=None)
    try:
        return Bearer(token=token, claims=token_decode(token, audience=BEARER_AUDIENCES))
    except TokenInvalid as error:
        return Bearer(token=token, error=error)


def _not_authenticated(detail: str = "Send Authorization: Bearer <token>.", **kwargs):
    return NotAuthenticated(detail, headers={"WWW-Authenticate": "Bearer"}, **kwargs)


def shopper_from_bearer(bearer: Bearer) -> TokenShopper:
    """The shopper a shopper token names: 401 without one or with a bad one."""
    if bearer.token is None:
        raise _not_authenticated()
    if isinstance(bearer.error, TokenAccountInactive):
        raise AccountInactive()
    error = bearer.error
    if error is None and bearer.audience != AUDIENCE_SHOPPER:
        error = TokenInvalid("Audience doesn't match")
    user_id = bearer.user_id
    if error is None and user_id is None:
        error = TokenInvalid("sub is not a shopper id")
    if error is not None:
        raise _not_authenticated(f"Invalid token: {error}", code="invalid_token")
    return TokenShopper(id=user_id, username=bearer.claims.get("name", ""), claims=bearer.claims)


def request_shopper(request) -> TokenShopper:
    """The shopper of the request's Bearer token (verified once per request), or a 401."""
    shopper = getattr(request, "shopper", None)
    if shopper is None:
        shopper = request.shopper = shopper_from_bearer(request_bearer(request))
    return shopper


def shopper_from_authorization(authorization: str) -> TokenShopper:
    """The shopper of an ``Authorization`` header value, outside a request."""
    return shopper_from_bearer(bearer_verify(authorization))


def token_is_malformed(bearer: Bearer) -> bool:
    return isinstance(bearer.error, TokenMalformed)


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        if not request.META.get("HTTP_AUTHORIZATION", ""):
            return None
        shopper = request_shopper(request._request)
        return shopper, shopper.claims

    def authenticate_header(self, request):
        return "Bearer"
