"""One protection middleware for every endpoint (rate limits, block list, load shedding,
the page-load cookies the bot screen reads), and the security headers."""

from __future__ import annotations

import re
import threading
import time
import uuid
from functools import lru_cache

from django.conf import settings
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import resolve

from apps.core.authentication import request_bearer
from apps.core.errors import ApplicationError, ServiceUnavailable
from apps.core.http import error_response, idempotency_key_header
from apps.core.tokens import TokenInvalid
from apps.orders.services.degraded import FastPathState, fast_path_state
from apps.orders.services.reservations import SoldOut
from apps.orders.services.sold_out import sold_out_refuses
from apps.waiting_room.tokens import admission_from_claims

from . import logins, ratelimits
from .blocklist import is_blocked
from .scoring import DEVICE_COOKIE, SEEN_COOKIE, cookie_sign
from .services import Blocked, client_ip

_BLOCKABLE = {"join", "purchase", "checkout", "challenge"}
_COOKIE_AGE = 30 * 24 * 3600


class RateLimited(ApplicationError):
    status, code = 429, "rate_limited"


class Overloaded(ServiceUnavailable):
    code = "overloaded"


def token_user_id(request) -> int | None:
    """The verified shopper id of a Bearer token (a shopper or an admission token), or None
    (the view says why it is bad). An unverified id is never used: a forged one would spend
    someone else's budget. The token is verified once per request: the view reads the same
    answer (apps.core.authentication.request_bearer)."""
    return request_bearer(request).user_id


_PURCHASE_PATH = re.compile(r"^/api/v1/flash_sales/(?P<sale_id>[^/]+)/purchase/?$")


def refused_sold_out(request, rule, user_id: int | None) -> str | None:
    """The sale of a purchase this process will refuse as sold out by itself (the shopper
    took no hold in a sale it knows sold out: apps/orders/services/sold_out.py), else None.
    Such a refusal costs less than the rate limits' round trip, so it skips them: no Redis
    at all."""
    if rule.group != "purchase" or request.method != "POST" or user_id is None:
        return None
    match = _PURCHASE_PATH.match(request.path_info)
    if match is None or not sold_out_refuses(match["sale_id"], user_id):
        return None
    return match["sale_id"]


@lru_cache(maxsize=1)
def _purchase_route() -> tuple[str, str]:
    """The purchase's URL pattern and name, for the metrics of a refusal answered here."""
    match = resolve("/api/v1/flash_sales/0/purchase")
    return match.route, match.url_name


def sold_out_answer(request, sale_id: str) -> SoldOut | None:
    """The view's own refusal, given here when the view could answer nothing else: a purchase
    of a sale this process knows sold out, by a shopper who took no hold in it
    (``refused_sold_out``), with an admission token for that sale, no X-Shopper-Token to
    compare and a valid X-Idempotency-Key. Anything else goes on to the view, which says what
    is wrong. Skipped: the load shedding, Django's inner middleware, the URL resolver and the
    view (half of such a refusal's CPU), none of which could change the answer."""
    path = request.path_info
    if not path.endswith("/purchase") or request.META.get("HTTP_X_SHOPPER_TOKEN", "").strip():
        return None
    claims = request_bearer(request).claims
    try:
        admission = admission_from_claims(claims) if claims else None
    except TokenInvalid:
        return None
    if admission is None or admission.sale_id != sale_id:
        return None
    try:
        idempotency_key_header(request, required=True)
    except ApplicationError:
        return None
    request.route = _purchase_route()  # read by the metrics (apps/core/middleware.py)
    return SoldOut("Sold out: every unit is taken.")


def _no_response(request):
    raise AssertionError("only the response half of these middleware runs here")


class ProtectionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.purchase_slots = threading.BoundedSemaphore(max(1, settings.PURCHASE_INFLIGHT_CAP))
        # The headers Django's middleware further in adds to every answer (nosniff,
        # Referrer-Policy, COOP, HSTS on HTTPS, X-Frame-Options), for answers given here.
        self.response_headers = [
            SecurityMiddleware(_no_response).process_response,
            XFrameOptionsMiddleware(_no_response).process_response,
        ]

    def __call__(self, request):
        response = self._protected(request)
        refused = getattr(request, logins.REFUSED, None)
        if refused is not None:  # a password check was refused before hashing (logins.py)
            return self._headed(request, logins.login_refused_response(request, refused))
        return response

    def _headed(self, request, response):
        """An answer given here, with the headers the inner middleware would have added."""
        for add_headers in self.response_headers:
            response = add_headers(request, response)
        return response

    def _answer(self, request, error: ApplicationError):
        return self._headed(request, error_response(error))

    def _protected(self, request):
        rule = ratelimits.rule_for(request)
        if rule is None:
            return self._page(request, self.get_response(request))
        ip = client_ip(request)
        user_id = token_user_id(request)
        limited = None
        sold_out_sale = refused_sold_out(request, rule, user_id)
        if sold_out_sale is None:
            limited = ratelimits.check(request, rule, user_id=user_id, ip=ip).limited
        if limited:
            return self._answer(
                request,
                RateLimited(
                    f"Too many requests ({limited.scope} limit on {rule.group}); "
                    f"retry in {limited.retry_after} s.",
                    headers={"Retry-After": str(limited.retry_after)},
                    extra={"retry_after": limited.retry_after},
                ),
            )
        if rule.group in _BLOCKABLE and request.method == "POST":
            try:
                blocked = is_blocked(user_id=user_id, ip=ip)
            except ApplicationError as error:
                return self._answer(request, error)
            if blocked:
                return self._answer(
                    request,
                    Blocked(
                        "You are blocked from our sales. Contact support if this is a mistake."
                    ),
                )
        if rule.group != "purchase":
            return self.get_response(request)
        refusal = sold_out_answer(request, sold_out_sale) if sold_out_sale else None
        if refusal is not None:
            return self._answer(request, refusal)
        return self._purchase(request)

    def _purchase(self, request):
        if not self.purchase_slots.acquire(blocking=False):
            return self._answer(
                request, Overloaded("Too many purchases at this moment; try again.", retry_after=1)
            )
        try:
            if fast_path_state() is FastPathState.RESYNCING:
                return self._answer(
                    request,
                    ServiceUnavailable(
                        "Inventory is being resynchronised; try again.",
                        code="inventory_resyncing",
                        retry_after=1,
                    ),
                )
            return self.get_response(request)
        finally:
            self.purchase_slots.release()

    def _page(self, request, response):
        """Pages set the cookies the bot screen reads: when a page was first loaded, and a
        device id (both signed). Never on a response a CDN may share (Cache-Control: public):
        those would not be cached, or would hand every visitor one device id. The shared pages
        call the private /me endpoint on load, which sets them instead."""
        shareable = "public" in response.get("Cache-Control", "")
        is_page = response.get("Content-Type", "").startswith("text/html")
        if (
            request.method == "GET"
            and response.status_code == 200
            and not shareable
            and (is_page or request.path == "/me")
        ):
            if SEEN_COOKIE not in request.COOKIES:
                response.set_cookie(
                    SEEN_COOKIE,
                    cookie_sign(f"{time.time():.3f}"),
                    max_age=_COOKIE_AGE,
                    httponly=True,
                    samesite="Lax",
                    secure=settings.SESSION_COOKIE_SECURE,
                )
            if DEVICE_COOKIE not in request.COOKIES:
                response.set_cookie(
                    DEVICE_COOKIE,
                    cookie_sign(uuid.uuid4().hex),
                    max_age=365 * 24 * 3600,
                    httponly=True,
                    samesite="Lax",
                    secure=settings.SESSION_COOKIE_SECURE,
                )
        return response


def content_security_policy(path: str) -> str:
    ws = settings.WS_PUBLIC_URL.rstrip("/")
    if path.startswith("/api/docs"):
        # The API docs page: Redoc, served by us, styles inline and runs a worker from a blob.
        return (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "font-src 'self' data:; img-src 'self' data:; worker-src 'self' blob:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
        )
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; worker-src 'self' blob:; "
        f"connect-src 'self' {ws}; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'; object-src 'none'"
    )


class SecurityHeadersMiddleware:
    """The Content Security Policy (Django 5.2 has none built in) and Permissions-Policy;
    HSTS, nosniff, Referrer-Policy and X-Frame-Options come from Django's own middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", content_security_policy(request.path))
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response
