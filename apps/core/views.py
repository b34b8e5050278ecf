"""Error answers for every endpoint: JSON ``{"error", "detail"}`` under /api/, a friendly page
(templates/<status>.html) elsewhere. Django-level handlers (flashsale/urls.py) and the
database-outage middleware use them; DRF's own errors go through apps/core/exceptions.py."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template import loader

from .http import json_response

# How long a client should wait after PostgreSQL refused a connection.
DATABASE_RETRY_AFTER = 5


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def error_page(request, status: int, *, context: dict | None = None, headers=None):
    """The friendly HTML page for ``status``; it touches neither the session nor the database."""
    body = loader.get_template(f"{status}.html").render(context or {}, request)
    response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_answer(request, status: int, code: str, detail: str, *, retry_after: int | None = None):
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if _is_api(request):
        body = {"error": code, "detail": detail}
        if retry_after:
            body["retry_after"] = retry_after
        return json_response(body, status=status, headers=headers)
    return error_page(request, status, context={"retry_after": retry_after}, headers=headers)


def is_database_unavailable(exc: BaseException | None) -> bool:
    """PostgreSQL refused or dropped the connection (too many clients, the pool's wait ran out,
    server down or restarting): a moment's outage, not a bug."""
    return isinstance(exc, OperationalError | InterfaceError)


def database_unavailable(request):
    return error_answer(
        request,
        503,
        "database_unavailable",
        "The shop is briefly unavailable; nothing was changed. Try again in a few seconds.",
        retry_after=DATABASE_RETRY_AFTER,
    )


def too_many_requests(request, *, retry_after: int):
    """A 429 (the friendly page for pages, JSON under /api/) for limits outside the API."""
    return error_answer(
        request,
        429,
        "rate_limited",
        f"Too many requests; retry in {retry_after} s.",
        retry_after=retry_after,
    )


def bad_request(request, exception=None):
    return error_answer(request, 400, "bad_request", "The request could not be read.")


def permission_denied(request, exception=None):
    return error_answer(request, 403, "forbidden", "You may not do that.")


def not_found(request, exception=None):
    return error_answer(request, 404, "not_found", "Not found.")


def internal_error(request):
    # Called inside Django's exception handling, so the exception is still current.
    if is_database_unavailable(sys.exc_info()[1]):
        return database_unavailable(request)
    return error_answer(
        request,
        500,
        "server_error",
        "Something went wrong on our side; nothing was charged or reserved twice.",
    )
