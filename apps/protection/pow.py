"""Proof of work for joining a waiting room.

A challenge is a signed, expiring string naming the sale and the difficulty; the client finds
a nonce such that SHA-256(challenge + ":" + nonce) has ``difficulty`` leading zero bits. The
server checks the signature, the difficulty against the sale's current one, the answer (one
hash), and spends the challenge in Redis (SET NX, under the sale's hash tag) so each is
accepted once. A join spends it in its own script (lua/join_screen.lua).
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core import signing

from apps.core.errors import Forbidden, ServiceUnavailable
from apps.core.redis import RedisError, get_redis, sale_key

_SALT = "protection.pow"
MAX_NONCE_LENGTH = 64


class PowRequired(Forbidden):
    code = "pow_required"


class PowInvalid(Forbidden):
    code = "pow_invalid"


class PowReplayed(PowInvalid):
    def __init__(self):
        super().__init__("This challenge was already used; fetch a new one.", code="pow_replayed")


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT)


def challenge_issue(*, sale_id: object, difficulty: int) -> str:
    return _signer().sign(f"{sale_id}.{difficulty}.{secrets.token_urlsafe(12)}")


def leading_zero_bits(digest: bytes) -> int:
    return len(digest) * 8 - int.from_bytes(digest, "big").bit_length()


def pow_digest(challenge: str, nonce: str) -> bytes:
    return hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()


def pow_solve(challenge: str, difficulty: int) -> str:
    """What the page's worker does; used by tests, scripts and the simulated bots."""
    nonce = 0
    while leading_zero_bits(pow_digest(challenge, str(nonce))) < difficulty:
        nonce += 1
    return str(nonce)


def spent_seconds() -> int:
    """How long a spent challenge is remembered: past its lifetime."""
    return settings.POW_CHALLENGE_SECONDS + 5


def pow_verify(*, sale_id: object, required: int, challenge: object, nonce: object) -> None:
    """Accept a fresh, correct answer once; raise a 403 ApplicationError otherwise."""
    spent_key = pow_check(sale_id=sale_id, required=required, challenge=challenge, nonce=nonce)
    if spent_key is None:
        return
    try:
        first = get_redis().set(spent_key, 1, nx=True, ex=spent_seconds())
    except RedisError:
        raise ServiceUnavailable("Try again in a moment.", code="pow_unavailable") from None
    if not first:
        raise PowReplayed()


def pow_check(*, sale_id: object, required: int, challenge: object, nonce: object) -> str | None:
    """Check a fresh, correct answer without spending it (raise a 403 ApplicationError
    otherwise): the Redis key that spends it, or None when the sale asks no proof of work."""
    if required <= 0:
        return None
    if not challenge or nonce in (None, ""):
        raise PowRequired(
            "Solve the proof-of-work challenge first (GET .../challenge).",
            extra={"challenge_url": f"/api/v1/flash_sales/{sale_id}/challenge"},
        )
    if not isinstance(challenge, str) or len(challenge) > 256:
        raise PowInvalid("The challenge is not one this server issued.")
    if isinstance(nonce, int) and not isinstance(nonce, bool):
        nonce = str(nonce)
    if not isinstance(nonce, str) or len(nonce) > MAX_NONCE_LENGTH:
        raise PowInvalid(f"nonce must be a string of at most {MAX_NONCE_LENGTH} characters.")
    try:
        value = _signer().unsign(challenge, max_age=settings.POW_CHALLENGE_SECONDS)
    except signing.SignatureExpired:
        raise PowInvalid("The challenge expired; fetch a new one.", code="pow_expired") from None
    except signing.BadSignature:
        raise PowInvalid("The challenge is not one this server issued.") from None
    challenge_sale, _, rest = value.partition(".")
    difficulty_text, _, _ = rest.partition(".")
    if challenge_sale != str(sale_id):
        raise PowInvalid("The challenge was issued for another sale.")
    difficulty = int(difficulty_text)
    if difficulty < required:
        raise PowInvalid(
            f"The challenge is easier ({difficulty} bits) than this sale asks ({required}).",
            code="pow_too_easy",
        )
    if leading_zero_bits(pow_digest(challenge, nonce)) < difficulty:
        raise PowInvalid("The answer does not solve the challenge.", code="pow_wrong")
    digest = hashlib.sha256(challenge.encode()).hexdigest()[:32]
    return sale_key(sale_id, "pow", "spent", digest)
