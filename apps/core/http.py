"""Small JSON helpers for the hand-written hot-path views."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse

from .errors import ApplicationError, BadRequest

# One encoder for every answer: json.dumps(cls=...) builds a new one per call.
_encoder = DjangoJSONEncoder(separators=(",", ":"))


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(
        _encoder.encode(body),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(error: ApplicationError) -> HttpResponse:
    response = json_response(error.body(), status=error.status, headers=error.headers)
    response.error_code = error.code  # read by the metrics middleware without parsing the body
    return response


MAX_IDEMPOTENCY_KEY_LENGTH = 255


def idempotency_key_header(request, *, required: bool) -> str | None:
    """The X-Idempotency-Key header: 1-255 printable ASCII characters, else 400
    ``invalid_idempotency_key``; absent or blank is ``missing_idempotency_key`` when required,
    None otherwise. Only ASCII blanks are trimmed: str.strip() would eat a non-ASCII key
    (U+00A0, U+0085) whole and call it missing."""
    raw = request.META.get("HTTP_X_IDEMPOTENCY_KEY")  # request.headers builds every header
    key = (raw or "").strip(" \t")
    if not key:  # absent or blank
        if required:
            raise BadRequest(
                "Send an X-Idempotency-Key header (one per attempt).",
                code="missing_idempotency_key",
            )
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadRequest(
            f"X-Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters.",
            code="invalid_idempotency_key",
        )
    return key


def require_method(request, *allowed: str) -> None:
    """A 405 naming the allowed methods (in the Allow header too) for any other method."""
    if request.method not in allowed:
        names = ", ".join(allowed)
        raise ApplicationError(
            f"Use {names}.", code="method_not_allowed", status=405, headers={"Allow": names}
        )
