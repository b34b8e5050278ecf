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
    response = json_response(error.body(), status=error.status, headers=error.headers)
    response.error_code = error.code  # read by the metrics middleware without parsing the body
    return response


def require_method(request, *allowed: str) -> None:
    """A 405 naming the allowed methods (in the Allow header too) for any other method."""
    if request.method not in allowed:
        names = ", ".join(allowed)
        raise ApplicationError(
            f"Use {names}.", code="method_not_allowed", status=405, headers={"Allow": names}
        )
