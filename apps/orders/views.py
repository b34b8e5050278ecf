"""The reservation page: the shopper's own order, its countdown and the way to pay."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .models import Order


@require_GET
@never_cache
@login_required
def order_detail_view(request, order_id):
    order = (
        Order.objects.select_related("sale__product")
        .filter(id=order_id, user_id=request.user.id)
        .first()
    )
    if order is None:
        # Someone else's order looks exactly like a missing one.
        raise Http404("No such order.")
    return render(request, "orders/detail.html", {"order": order, "sale": order.sale})
