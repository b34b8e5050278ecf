"""Liveness and readiness for a load balancer."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from kombu import Connection

from apps.core.http import json_response
from apps.core.memory import ProcessMemory
from apps.core.redis import RedisError, get_redis
from apps.core.schema import json_response as json_description
from apps.core.schema import openapi

_STATUS = {"type": "object", "properties": {"status": {"type": "string"}}}
_READINESS = {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}}

_readiness = ProcessMemory("readiness", seconds=1.0, maxsize=1)


@csrf_exempt
@require_GET
@openapi(
    get={
        "operationId": "healthz",
        "summary": "Liveness",
        "tags": ["health"],
        "security": [],
        "responses": {"200": json_description("Alive", _STATUS)},
    }
)
def healthz(request):
    """Liveness: the process answers. Never touches a dependency."""
    return json_response({"status": "ok"})


def _check_timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # each dependency reports its own failure
        return {"ok": False, "error": exc.__class__.__name__, "ms": _ms_since(started)}
    return {"ok": True, "ms": _ms_since(started)}


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _postgres_check() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        connection.close_if_unusable_or_obsolete()
        raise


def _redis_check() -> None:
    try:
        get_redis().ping()
    except RedisError:
        raise


def _broker_check() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=1) as conn:
        conn.ensure_connection(max_retries=1, timeout=1)


def readiness() -> dict:
    """Each dependency's state, cached for a second so probes cannot load them."""
    cached = _readiness.get("body")
    if cached is not None:
        return cached
    checks = {
        "postgres": _check_timed(_postgres_check),
        "redis": _check_timed(_redis_check),
        "broker": _check_timed(_broker_check),
    }
    required = settings.READINESS_REQUIRED
    if required:
        ready = all(checks[name]["ok"] for name in required if name in checks)
    else:
        ready = checks["postgres"]["ok"] or checks["redis"]["ok"]
    state = "ok" if all(c["ok"] for c in checks.values()) else ("degraded" if ready else "down")
    body = {"status": state, "ready": ready, "checks": checks}
    _readiness.set("body", body)
    return body


@csrf_exempt
@require_GET
@openapi(
    get={
        "operationId": "readyz",
        "summary": "Readiness, with each dependency's state",
        "tags": ["health"],
        "security": [],
        "responses": {
            "200": json_description("Ready", _READINESS),
            "503": json_description("Not ready", _READINESS),
        },
    }
)
def readyz(request):
    body = readiness()
    return json_response(body, status=200 if body["ready"] else 503)
