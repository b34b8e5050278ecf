"""Bearer-token identity without a database hit: the token carries the shopper's id."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication

from .accounts import AccountInactive
from .errors import NotAuthenticated
from .tokens import AUDIENCE_SHOPPER, TokenAccountInactive, TokenInvalid, token_decode


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


def bearer_token(authorization: str) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def shopper_from_authorization(authorization: str) -> TokenShopper:
    token = bearer_token(authorization)
    if token is None:
        raise NotAuthenticated(
            "Send Authorization: Bearer <token>.", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        claims = token_decode(token, audience=AUDIENCE_SHOPPER)
        user_id = int(claims["sub"])
    except TokenAccountInactive:
        raise AccountInactive() from None
    except (TokenInvalid, ValueError) as exc:
        raise NotAuthenticated(
            f"Invalid token: {exc}", code="invalid_token", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    return TokenShopper(id=user_id, username=claims.get("name", ""), claims=claims)


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        shopper = shopper_from_authorization(header)
        return shopper, shopper.claims

    def authenticate_header(self, request):
        return "Bearer"
