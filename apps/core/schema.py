"""OpenAPI 3.0.3 for the whole API, DRF views and hand-written hot-path views alike.

- The hand-written views carry their own description (``@openapi(post={...})``, the text in
  their app's ``schema.py``); ``complete_schema`` finds them by walking the URLconf, so the
  documented path is always the routed one.
- Responses every operation under /api/ can give are added in one place: 429 (rate limits),
  503 (load shedding, a dependency down), and for a JSON body 400 and 413 (the bounded parser,
  ``apps.core.parsers``), 415 for DRF's content negotiation. Each error is ``Error``.
- Views add what only they can answer (404 for an unknown sale, 425 before the start, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.urls import get_resolver
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ApiAutoSchema(SpectacularAutoSchema):
    """Nested ``InputSerializer``/``OutputSerializer`` classes are named after their view."""

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        if name in ("Input", "Output"):
            view = self.view.__class__.__name__.removesuffix("Api").removesuffix("View")
            name = f"{view}{name}"
        return name


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.core.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return BEARER


BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class ErrorSerializer(serializers.Serializer):
    """Every error under /api/. Some carry more (``fields``, ``starts_at``, ``retry_after``)."""

    error = serializers.CharField(help_text="A stable code, e.g. sold_out, not_started.")
    detail = serializers.CharField(help_text="A sentence for people.")


ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "description": ErrorSerializer.__doc__,
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. sold_out, not_started."},
        "detail": {"type": "string", "description": "A sentence for people."},
    },
    "required": ["error", "detail"],
}

REASONS = {
    400: "Bad input",
    401: "Missing or invalid credentials",
    402: "Card refused by the payment gateway (number, expiry or security code)",
    403: "Refused (not admitted, blocked, proof of work)",
    404: "Not found",
    409: "Conflict with the current state",
    410: "Gone (sold out, ended, cancelled, expired)",
    413: "Body larger than the bound",
    415: "Body not JSON",
    422: "Idempotency key reused with another request",
    425: "Too early (the sale or its waiting room has not opened)",
    429: "Rate limited",
    503: "Briefly unavailable",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}


def error_response(code: int, description: str = "") -> dict:
    """A raw OpenAPI response object for an error (hand-written operations)."""
    response = {
        "description": description or REASONS.get(code, "Refused"),
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    if code in (425, 429, 503):
        response["headers"] = _RETRY_AFTER
    return response


def errors(*codes: int) -> dict:
    """Error responses for a hand-written operation."""
    return {str(code): error_response(code) for code in codes}


def error_responses(*codes: int) -> dict:
    """Error responses for ``extend_schema(responses=...)`` on a DRF view."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=REASONS.get(code, "Refused"))
        for code in codes
    }


def json_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi(**operations: dict) -> Callable:
    """Describe a hand-written view: ``@openapi(post={...operation...})``."""

    def mark(view):
        view.openapi = operations
        return view

    return mark


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if hasattr(pattern, "url_patterns"):
            yield from _walk(pattern.url_patterns, route)
        else:
            yield route, pattern.callback


_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def plain_view_paths() -> dict[str, dict]:
    """``{"/api/v1/...": {"post": operation}}`` for every routed view with ``.openapi``."""
    paths: dict[str, dict] = {}
    for route, callback in _walk(get_resolver().url_patterns):
        operations = getattr(callback, "openapi", None)
        if operations:
            path = "/" + _CONVERTER.sub(r"{\1}", route.lstrip("^").rstrip("$"))
            paths.setdefault(path, {}).update(operations)
    return paths


def complete_schema(result, generator, request, public):
    """drf-spectacular postprocessing hook: the hand-written views, then the responses every
    operation shares, then the components they refer to."""
    paths = result.setdefault("paths", {})
    plain = set()
    for path, operations in plain_view_paths().items():
        for method, operation in operations.items():
            paths.setdefault(path, {})[method] = operation
            plain.add((path, method))
    for path, item in paths.items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            shared = [429, 503]
            if "requestBody" in operation:
                shared += [400, 413] + ([] if (path, method) in plain else [415])
            responses = operation["responses"]
            security = operation.get("security") or []
            if "401" in responses and {} in security:  # DRF's "optional": ours is required
                operation["security"] = [item for item in security if item]
            for code in shared:
                responses.setdefault(str(code), error_response(code))
            operation["responses"] = dict(sorted(responses.items()))
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components.setdefault("securitySchemes", {})["bearerAuth"] = BEARER
    return result
