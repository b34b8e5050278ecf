"""The shop's public pages. They are the same for everyone, so a CDN can keep them for a few
seconds: nothing here reads the session or the shopper (that comes from /me and the API), and
sale data comes from the stampede-proof cache, not from PostgreSQL."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import Http404, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .pages import public_page
from .selectors import SaleSnapshot, sale_snapshot, sale_snapshots_upcoming_or_live
from .services import sale_phase
from .stock import units_left

# A CDN may keep a public page this long; shorter when a start is near, so nobody sees the
# "starts in" page for long after the sale went live (the JS switches phase on its own anyway).
FAR_MAX_AGE = 10
NEAR_MAX_AGE = 2
NEAR_SECONDS = 120


def _public_max_age(sales: list[SaleSnapshot]) -> int:
    now_ms = time.time() * 1000
    for sale in sales:
        if sale.queue_opens_ms - NEAR_SECONDS * 1000 <= now_ms:
            return NEAR_MAX_AGE
    return FAR_MAX_AGE


def _public(response, sales: list[SaleSnapshot]):
    patch_cache_control(response, public=True, max_age=_public_max_age(sales))
    return response


def _page_context(**extra) -> dict:
    return {"cacheable_page": True, "ws_public_url": settings.WS_PUBLIC_URL, **extra}


def _phase(sale: SaleSnapshot) -> str:
    """Scheduled, live, sold out, ended or cancelled, from the snapshot and Redis's count (no
    database query), so even the cached page's first paint shows the right badge."""
    return sale_phase(sale, units_left=units_left(sale_id=sale.id))


@require_GET
def sale_list_view(request):
    def render_list():
        sales = sale_snapshots_upcoming_or_live()
        cards = [{"sale": sale, "phase": _phase(sale)} for sale in sales]
        return _public(render(request, "sales/list.html", _page_context(cards=cards)), sales)

    return public_page(request.path, render_list)


@require_GET
def sale_detail_view(request, sale_id):
    def render_sale():
        sale = sale_snapshot(str(sale_id))
        if sale is None:
            raise Http404("No such sale.")
        context = _page_context(sale=sale, phase=_phase(sale))
        return _public(render(request, "sales/detail.html", context), [sale])

    return public_page(request.path, render_sale)


@require_GET
@never_cache
def server_time_view(request):
    """The server's clock for countdowns (the page measures its offset from this)."""
    return JsonResponse({"now_ms": int(time.time() * 1000)})


@require_GET
@never_cache
def me_view(request):
    """Who is signed in, for the header of the cacheable pages (private, never cached)."""
    if not request.user.is_authenticated:
        return JsonResponse({"username": None})
    return JsonResponse({"username": request.user.get_username(), "csrf_token": get_token(request)})
