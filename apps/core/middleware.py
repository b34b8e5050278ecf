"""The outermost middleware: a request id for every request and its logs, and the request's
duration, route and outcome in the metrics. And a database that refuses connections as a 503
with Retry-After on every endpoint."""

from __future__ import annotations

import logging
import time

from django.db import connection
from django.urls import Resolver404, resolve

from . import metrics, tracing
from .request_context import (
    REQUEST_ID_HEADER,
    request_id_from,
    request_id_reset,
    request_id_set,
)
from .views import database_unavailable, is_database_unavailable

logger = logging.getLogger(__name__)

_PURCHASE_ROUTE = "purchase"
_JOIN_ROUTE = "waiting-room-join"


def _route(request) -> tuple[str, str]:
    """The URL pattern and name that served the request (bounded, unlike the path). Requests
    refused by middleware never reached the resolver: resolve them here, unless the
    middleware named the route (``request.route``)."""
    named = getattr(request, "route", None)
    if named is not None:
        return named
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "unmatched", ""
    return match.route or match.view_name, match.url_name or ""


def error_code(response) -> str:
    code = getattr(response, "error_code", None)
    if code is None:
        data = getattr(response, "data", None)
        if isinstance(data, dict):
            code = data.get("error")
    return code if isinstance(code, str) else ""


class ObservabilityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        token = request_id_set(request_id)
        try:
            if tracing.tracing_enabled():
                response = self._traced(request)
            else:
                response = self.get_response(request)
        finally:
            request_id_reset(token)
        response[REQUEST_ID_HEADER] = request_id
        self._count(request, response, time.perf_counter() - started)
        return response

    def _traced(self, request):
        with (
            tracing.server_span(request) as span,
            connection.execute_wrapper(tracing.database_span_wrapper),
        ):
            response = self.get_response(request)
            span.set_attribute("flashsale.request_id", request.request_id)
            tracing.server_span_finish(span, route=_route(request)[0], status=response.status_code)
        return response

    def _count(self, request, response, elapsed: float) -> None:
        route, name = _route(request)
        status = response.status_code
        metrics.http_server_request_duration.labels(request.method, route, str(status)).observe(
            elapsed
        )
        code = error_code(response) if status >= 400 else ""
        if code and (400 <= status < 500 or status == 503):
            metrics.refusals.labels(code).inc()
        if name == _PURCHASE_ROUTE and request.method == "POST":
            outcome = {201: "reserved", 200: "replayed"}.get(status) or code or f"http_{status}"
            metrics.purchase_attempts.labels(outcome).inc()
        elif name == _JOIN_ROUTE and request.method == "POST":
            metrics.waiting_room_joins.labels("joined" if status < 400 else code or "error").inc()


class DatabaseUnavailableMiddleware:
    """PostgreSQL refusing a connection (too many clients, the pool's wait running out, the
    server restarting) is a 503 with Retry-After: JSON under /api/, a page elsewhere, the admin
    and the auth endpoints included. Exceptions raised outside a view reach ``handler500``
    (apps.core.views.internal_error), which answers the same."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_database_unavailable(exception):
            return None
        logger.warning("database unavailable on %s %s: %s", request.method, request.path, exception)
        return database_unavailable(request)
