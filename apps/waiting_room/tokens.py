"""Admission tokens: short-lived tokens bound to one shopper and one sale, issued and verified
by the project's one token module (apps.core.tokens), without a database hit."""

from __future__ import annotations

from dataclasses import dataclass

from apps.core.tokens import AUDIENCE_ADMISSION, TokenInvalid, token_decode, token_encode


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
    claims = {"sub": str(user_id), "sale": str(sale_id), "jti": jti}
    if rank is not None:
        claims["rank"] = rank
    return token_encode(
        claims,
        audience=AUDIENCE_ADMISSION,
        lifetime_seconds=lifetime_seconds,
        expires_at=expires_at,
    )


def admission_from_claims(claims: dict) -> Admission:
    """The admission verified claims grant, or TokenInvalid when they are not an admission's."""
    try:
        if claims["aud"] != AUDIENCE_ADMISSION:
            raise ValueError("Audience doesn't match")
        rank = claims.get("rank")
        return Admission(
            user_id=int(claims["sub"]),
            sale_id=str(claims["sale"]),
            jti=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            rank=int(rank) if rank is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenInvalid(f"not an admission token: {exc}") from None


def admission_decode(token: str) -> Admission:
    """The admission a token grants, or TokenInvalid (wrong audience, key, algorithm, expired)."""
    return admission_from_claims(token_decode(token, audience=AUDIENCE_ADMISSION))
