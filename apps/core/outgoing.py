"""What our outgoing HTTP calls carry: the request id and the trace context."""

from __future__ import annotations

from . import tracing
from .request_context import REQUEST_ID_HEADER, request_id_get


def outgoing_headers_add(request) -> None:
    """An httpx request hook: name the request behind this call, continue its trace."""
    request_id = request_id_get()
    if request_id:
        request.headers[REQUEST_ID_HEADER] = request_id
    carrier: dict = {}
    tracing.inject(carrier)
    for name, value in carrier.items():
        request.headers[name] = value
