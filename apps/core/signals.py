"""Celery carries the request id: the publisher puts it in the message headers, the worker sets
it for the task's run, so a task's log lines and gateway calls name the request behind them."""

from __future__ import annotations

from celery.signals import before_task_publish, task_postrun, task_prerun

from . import tracing
from .request_context import request_id_get, request_id_reset, request_id_set

_running: dict[str, tuple] = {}


@before_task_publish.connect
def _context_to_headers(headers=None, **_):
    if headers is None:
        return
    request_id = request_id_get()
    if request_id:
        headers.setdefault("request_id", request_id)
    tracing.inject(headers)


@task_prerun.connect
def _context_from_headers(task_id=None, task=None, **_):
    if task is None:
        return
    request_id = getattr(task.request, "request_id", None)
    id_token = request_id_set(request_id) if request_id else None
    trace_token = tracing.attach_from({"traceparent": getattr(task.request, "traceparent", "")})
    span = tracing.span(f"celery.task {task.name}", kind=tracing.SpanKind.CONSUMER)
    span.__enter__()
    _running[task_id] = (id_token, trace_token, span)


@task_postrun.connect
def _context_clear(task_id=None, **_):
    id_token, trace_token, span = _running.pop(task_id, (None, None, None))
    if span is not None:
        span.__exit__(None, None, None)
    tracing.detach(trace_token)
    if id_token is not None:
        request_id_reset(id_token)
