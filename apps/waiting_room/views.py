"""The queue page: per shopper and never cached. It carries a shopper token for the page's
JavaScript, which joins the room, follows the queue and buys through the API."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.tokens import shopper_token_issue
from apps.sales.selectors import sale_snapshot


@require_GET
@never_cache
@login_required
def queue_view(request, sale_id):
    sale = sale_snapshot(str(sale_id))
    if sale is None:
        raise Http404("No such sale.")
    token, _ = shopper_token_issue(user_id=request.user.id, username=request.user.get_username())
    return render(
        request,
        "waiting_room/queue.html",
        {"sale": sale, "shopper_token": token, "ws_public_url": settings.WS_PUBLIC_URL},
    )
