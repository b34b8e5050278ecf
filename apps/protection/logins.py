"""Password checks, limited: per username and per address with a growing delay, and a bound
on how many passwords one process hashes at once.

A password check costs about 0.6 s of CPU (PBKDF2), so an unlimited login form is both a
brute-force door and a lever on the CPU the hot paths need. Every password check in the
project goes through ``authenticate()``, hence through ``LimitedModelBackend``: the HTML
login, the admin's login and ``POST /api/v1/auth/token`` alike. Before any hashing it asks
Redis (``lua/login_attempt.lua``, one call per key) whether this username and this address
may try now: the first few attempts are free, then each must wait twice as long as the one
before (up to LOGIN_DELAY_MAX_SECONDS). A success forgets the username's record and gives the
address its attempt back. Then at most LOGIN_HASH_CONCURRENCY checks hash at once per
process; a check that cannot start within LOGIN_HASH_WAIT_SECONDS is refused (503) instead of
queueing on a thread a purchase could use.

A refusal marks the request; ProtectionMiddleware answers it: 429 (or 503) with Retry-After,
a page for the forms, JSON under /api/. When Redis errs, attempts are not limited (the hash
bound still holds) rather than locking everybody out.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.loader import select_template

from apps.core.errors import ApplicationError
from apps.core.http import error_response
from apps.core.lua import LuaScript
from apps.core.redis import RedisError, get_redis, key

from .services import client_ip

logger = logging.getLogger(__name__)

LOGIN_ATTEMPT = LuaScript(Path(__file__).parent / "lua" / "login_attempt.lua")
REFUSED = "login_refused"  # the request attribute the middleware reads


@dataclass(frozen=True)
class LoginRefused:
    status: int  # 429 (too many attempts) or 503 (too many password checks at once)
    code: str
    detail: str
    retry_after: int


def _record_key(scope: str, value: str) -> str:
    return key("login", scope, value)


def _username_normalized(value) -> str:
    return str(value or "").strip().lower()[:150]


def _attempt_wait_us(record: str, mode: str, *, free: int = 0, now_us: int | None = None) -> int:
    """0 when allowed (or done), else the wait in microseconds."""
    allowed, wait = LOGIN_ATTEMPT(
        keys=[record],
        args=[
            mode,
            free,
            int(settings.LOGIN_DELAY_BASE_SECONDS * 1_000_000),
            int(settings.LOGIN_DELAY_MAX_SECONDS * 1_000_000),
            int(settings.LOGIN_MEMORY_SECONDS * 1000),
            "" if now_us is None else now_us,
        ],
        client=get_redis(),
    )
    return 0 if allowed else int(wait)


def login_attempt_begin(
    *, username: str, ip: str, now_us: int | None = None
) -> LoginRefused | None:
    """May this attempt check a password now? Counts it against both records when yes."""
    checks = [
        ("user", _username_normalized(username), settings.LOGIN_FREE_ATTEMPTS_PER_USERNAME),
        ("ip", ip, settings.LOGIN_FREE_ATTEMPTS_PER_IP),
    ]
    for scope, value, free in checks:
        if not value:
            continue
        try:
            wait_us = _attempt_wait_us(_record_key(scope, value), "begin", free=free, now_us=now_us)
        except RedisError as exc:
            logger.warning("login limits unavailable: %s", exc.__class__.__name__)
            return None
        if wait_us:
            retry = max(1, math.ceil(wait_us / 1_000_000))
            who = "this account" if scope == "user" else "your network"
            return LoginRefused(
                429,
                "too_many_login_attempts",
                f"Too many sign-in attempts for {who}.",
                retry,
            )
    return None


def login_attempt_succeeded(*, username: str, ip: str) -> None:
    try:
        _attempt_wait_us(_record_key("user", _username_normalized(username)), "forget")
        if ip:
            _attempt_wait_us(_record_key("ip", ip), "undo")
    except RedisError:
        pass


# Password hashing, bounded per process (the hashers release the GIL, so each one busies a
# core while it runs).
_hashing: threading.BoundedSemaphore | None = None
_hashing_lock = threading.Lock()


def _hash_slots() -> threading.BoundedSemaphore:
    global _hashing
    with _hashing_lock:
        size = max(1, settings.LOGIN_HASH_CONCURRENCY)
        if _hashing is None or _hashing._initial_value != size:
            _hashing = threading.BoundedSemaphore(size)
        return _hashing


class LimitedModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:  # a shell or a command: no client to limit
            return super().authenticate(request, username, password, **kwargs)
        http_request = getattr(request, "_request", request)  # DRF wraps the HttpRequest
        if username is None:
            username = kwargs.get(self._username_field())
        ip = client_ip(http_request)
        refused = login_attempt_begin(username=username, ip=ip)
        if refused is None:
            slots = _hash_slots()
            if slots.acquire(timeout=settings.LOGIN_HASH_WAIT_SECONDS):
                try:
                    user = super().authenticate(request, username, password, **kwargs)
                finally:
                    slots.release()
                if user is not None:
                    login_attempt_succeeded(username=username, ip=ip)
                return user
            refused = LoginRefused(
                503, "login_busy", "Too many sign-ins at this moment.", retry_after=1
            )
        setattr(http_request, REFUSED, refused)
        raise PermissionDenied(refused.detail)  # authenticate() stops here, tries no other

    @staticmethod
    def _username_field() -> str:
        return get_user_model().USERNAME_FIELD


def login_refused_response(request, refused: LoginRefused):
    headers = {"Retry-After": str(refused.retry_after)}
    if request.path.startswith("/api/"):
        return error_response(
            ApplicationError(
                f"{refused.detail} Try again in {refused.retry_after} s.",
                code=refused.code,
                status=refused.status,
                headers=headers,
                extra={"retry_after": refused.retry_after},
            )
        )
    # The site's own 429/503 page when it has one, else this app's.
    template = select_template([f"{refused.status}.html", "protection/login_wait.html"])
    title = "Too many tries" if refused.status == 429 else "Busy right now"
    context = {"title": title, "detail": refused.detail, "retry_after": refused.retry_after}
    response = HttpResponse(template.render(context, request), status=refused.status)
    for name, value in headers.items():
        response[name] = value
    return response
