"""Celery carries the request id: the publisher puts it in the message headers, the worker sets
it for the task's run, so a task's log lines and gateway calls name the request behind them."""

from __future__ import annotations

from celery.signals import before_task_publish, task_postrun, task_prerun

from .request_context import request_id_get, request_id_reset, request_id_set

_tokens: dict[str, object] = {}


@before_task_publish.connect
def _request_id_to_headers(headers=None, **_):
    request_id = request_id_get()
    if request_id and headers is not None:
        headers.setdefault("request_id", request_id)


@task_prerun.connect
def _request_id_from_headers(task_id=None, task=None, **_):
    request_id = getattr(task.request, "request_id", None) if task is not None else None
    if request_id:
        _tokens[task_id] = request_id_set(request_id)


@task_postrun.connect
def _request_id_clear(task_id=None, **_):
    token = _tokens.pop(task_id, None)
    if token is not None:
        request_id_reset(token)
