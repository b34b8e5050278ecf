"""The request id: accepted from X-Request-ID (or made), kept for the request's thread or task,
written into every log line, sent on with Celery tasks and gateway calls."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_request_id: ContextVar[str] = ContextVar("request_id", default="")


def request_id_from(raw: str | None) -> str:
    """A caller's id when it is short and plain (it goes into logs and headers), else a new one."""
    if raw and _ACCEPTED.match(raw):
        return raw
    return uuid.uuid4().hex


def request_id_get() -> str:
    return _request_id.get()


def request_id_set(value: str):
    return _request_id.set(value)


def request_id_reset(token) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (empty outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True
