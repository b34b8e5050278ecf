"""OpenTelemetry traces of the purchase and payment path: the request, its Lua calls and SQL
statements, the Celery task it queues and that task's gateway calls, in one trace.

Off by default: with no exporter configured nothing is set up, every helper below returns at
its first line, and the hot path pays one attribute read. OTEL_EXPORTER_OTLP_ENDPOINT (the
standard variable) turns on the OTLP/HTTP exporter; tests install an in-memory one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["SpanKind"]

tracer = trace.get_tracer("flashsale")


class _State:
    enabled = False


state = _State()


def tracing_setup(*, endpoint: str = "", service_name: str = "flashsale", exporter=None) -> None:
    """Install a tracer provider exporting to ``exporter`` (tests) or the OTLP endpoint."""
    if not endpoint and exporter is None:
        return
    # The SDK and the OTLP exporter take about a second to import: only a process that
    # traces pays for them (every web worker, task and command starts without).
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        SimpleSpanProcessor,
    )

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    global tracer
    tracer = provider.get_tracer("flashsale")
    state.enabled = True


def tracing_enabled() -> bool:
    return state.enabled


@contextlib.contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, **attributes) -> Iterator[object]:
    if not state.enabled:
        yield None
        return
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


@contextlib.contextmanager
def server_span(request) -> Iterator[object]:
    """The request's span, continuing a caller's trace (W3C traceparent) if it sent one."""
    if not state.enabled:
        yield None
        return
    carrier = {"traceparent": request.META.get("HTTP_TRACEPARENT", "")}
    parent = propagate.extract(carrier)
    with tracer.start_as_current_span(
        request.method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "url.path": request.path},
    ) as current:
        yield current


def server_span_finish(current, *, route: str, status: int) -> None:
    if current is None:
        return
    current.update_name(f"{current.name} {route}")
    current.set_attribute("http.route", route)
    current.set_attribute("http.response.status_code", status)
    if status >= 500:
        current.set_status(Status(StatusCode.ERROR))


def inject(headers: dict) -> None:
    """Put the current trace context into outgoing headers (Celery message, HTTP call)."""
    if state.enabled:
        propagate.inject(headers)


def attach_from(headers: dict):
    """Make a received trace context current; returns a token for ``detach``."""
    if not state.enabled or not headers.get("traceparent"):
        return None
    return context.attach(propagate.extract(headers))


def detach(token) -> None:
    if token is not None:
        context.detach(token)


def database_span_wrapper(execute, sql, params, many, ctx):
    """A connection.execute_wrapper: one client span per SQL statement."""
    with tracer.start_as_current_span(
        sql.split(None, 1)[0].upper() if sql else "SQL",
        kind=SpanKind.CLIENT,
        attributes={"db.system": "postgresql", "db.query.text": sql[:500]},
    ):
        return execute(sql, params, many, ctx)
