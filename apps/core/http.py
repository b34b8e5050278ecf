"""Small JSON helpers for the hand-written hot-path views."""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse

from .errors import ApplicationError


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(error: ApplicationError) -> HttpResponse:
    return json_response(error.body(), status=error.status, headers=error.headers)


def parse_json_object(raw: bytes) -> dict:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    from .errors import BadRequest

    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Malformed JSON body: {exc}", code="malformed_json") from None
    if not isinstance(value, dict):
        raise BadRequest("The body must be a JSON object.", code="malformed_json")
    return value
