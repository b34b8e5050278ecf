"""The Python ceiling for the purchase: a framework-free WSGI app that runs the SAME
apps/inventory/lua/reserve.lua (same keys, same arguments) under the same server, with no
Django, no token check and no PostgreSQL.

Configured by environment (scripts/bench sets it): RAW_REDIS_URL, RAW_KEY_PREFIX (the sale's
key prefix, ending in ``{sale:<id>}:``), RAW_STARTS_MS, RAW_ENDS_MS. The shopper's id comes
from the ``X-User`` header, the idempotency key from ``X-Idempotency-Key``.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import redis

LUA = Path(__file__).resolve().parents[2] / "apps" / "inventory" / "lua" / "reserve.lua"

_client = redis.Redis.from_url(os.environ.get("RAW_REDIS_URL", "redis://127.0.0.1:6379/0"))
_script = _client.register_script(LUA.read_text())
_prefix = os.environ.get("RAW_KEY_PREFIX", "raw:{sale:0}:")
_starts = int(os.environ.get("RAW_STARTS_MS", "0"))
_ends = int(os.environ.get("RAW_ENDS_MS", str(2**52)))
_fixed = [_prefix + "free", _prefix + "primed", _prefix + "buyers"]
_tail = [_prefix + "inflight", _prefix + "pending"]
_last = [_prefix + "holders", _prefix + "restock"]
_fingerprint = hashlib.sha256(b"q1").hexdigest()[:16]
_STATUS = {
    b"OK": "201 Created",
    b"SOLD_OUT": "410 Gone",
    b"LIMIT": "409 Conflict",
    b"ADMISSION_USED": "403 Forbidden",
}


def application(environ, start_response):
    user = environ.get("HTTP_X_USER", "0")
    idem = environ.get("HTTP_X_IDEMPOTENCY_KEY", "")
    digest = hashlib.sha256(idem.encode()).hexdigest()[:32]
    # the same keys and arguments as the API: an admission (jti per shopper) spent on success
    reply = _script(
        keys=[*_fixed, f"{_prefix}idem:{user}:{digest}", *_tail, f"{_prefix}adm:j{user}", *_last],
        args=[user, 1, 1, _fingerprint, 86400, _starts, _ends, str(uuid.uuid4()), f"j{user}", 900],
    )
    outcome = reply[0]
    body = json.dumps(
        {"outcome": outcome.decode(), "left": reply[1].decode() if len(reply) > 1 else None}
    ).encode()
    start_response(
        _STATUS.get(outcome, "200 OK"),
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
