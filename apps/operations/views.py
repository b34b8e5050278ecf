"""/metrics for Prometheus; the staff console of a live sale and its JSON; the events feed."""

from __future__ import annotations

import ipaddress
import json
import time

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from apps.core.errors import ApplicationError
from apps.core.http import error_response, json_response
from apps.core.metrics import metrics_exposition
from apps.core.parsers import request_json_object
from apps.protection.services import client_ip
from apps.sales.models import FlashSale

from .collectors import SaleCollector
from .models import OperatorAction, SaleEvent
from .selectors import sale_figures
from .services import sale_admission_pause, sale_admission_rate_set, sale_cancel_by_operator

FEED_STREAM_SECONDS = 25.0
FEED_POLL_SECONDS = 1.0


def _allowed(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in settings.METRICS_ALLOWED_NETWORKS)


@require_GET
def metrics_view(request):
    if not _allowed(client_ip(request)):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    body, content_type = metrics_exposition(SaleCollector())
    return HttpResponse(body, content_type=content_type)


@staff_member_required
def console_page(request, sale_id):
    sale = get_object_or_404(FlashSale, id=sale_id)
    return render(
        request,
        "operations/console.html",
        {
            **admin.site.each_context(request),
            "sale": sale,
            "figures": sale_figures(sale=sale).as_dict(),
            "actions": OperatorAction.objects.filter(sale=sale).select_related("actor")[:20],
            "ws_url": f"{settings.WS_PUBLIC_URL}/ws/ops/sales/{sale.id}/",
        },
    )


@staff_member_required
@require_GET
def console_figures_api(request, sale_id):
    sale = get_object_or_404(FlashSale, id=sale_id)
    return json_response(sale_figures(sale=sale).as_dict())


@staff_member_required
@require_POST
def console_control_api(request, sale_id, control):
    """pause | resume | rate ({"rate": N}) | cancel; each audited with the staff member."""
    sale = get_object_or_404(FlashSale, id=sale_id)
    try:
        body = request_json_object(request)
        if control in ("pause", "resume"):
            sale_admission_pause(sale_id=sale.id, actor=request.user, paused=control == "pause")
        elif control == "rate":
            sale_admission_rate_set(sale_id=sale.id, actor=request.user, rate=body.get("rate"))
        elif control == "cancel":
            sale_cancel_by_operator(sale_id=sale.id, actor=request.user)
        else:
            raise ApplicationError("Unknown control.", status=404, code="not_found")
    except ApplicationError as error:
        return error_response(error)
    sale.refresh_from_db()
    return json_response(sale_figures(sale=sale).as_dict())


def _event_frame(event: SaleEvent) -> str:
    payload = {
        "id": event.id,
        "sale_id": str(event.sale_id),
        "kind": event.kind,
        "data": event.data,
        "at": event.created_at.isoformat(),
    }
    return f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(payload)}\n\n"


def _feed_allowed(request) -> bool:
    token = settings.OPS_FEED_TOKEN
    if token and request.META.get("HTTP_AUTHORIZATION", "") == f"Bearer {token}":
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


@require_GET
def sale_events_feed(request, sale_id):
    """Server-Sent Events: the sale's events after Last-Event-ID (or ?after=), for about 25 s;
    the client's EventSource reconnects by itself and resumes where it was."""
    if not _feed_allowed(request):
        return json_response(
            {"error": "not_authenticated", "detail": "Staff session or feed token required."},
            status=401,
        )
    sale = get_object_or_404(FlashSale, id=sale_id)
    raw_after = request.META.get("HTTP_LAST_EVENT_ID") or request.GET.get("after") or "0"
    after = int(raw_after) if raw_after.isdigit() else 0

    def stream():
        nonlocal after
        yield "retry: 2000\n\n"
        deadline = time.monotonic() + FEED_STREAM_SECONDS
        while True:
            for event in SaleEvent.objects.filter(sale=sale, id__gt=after).order_by("id")[:100]:
                after = event.id
                yield _event_frame(event)
            if time.monotonic() >= deadline:
                return
            yield ": keep-alive\n\n"
            time.sleep(FEED_POLL_SECONDS)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
