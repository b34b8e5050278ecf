"""The checkout page: countdown, a test card, confirm; then the outcome, live."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from apps.core.errors import ApplicationError
from apps.core.http import json_response

from .selectors import order_body, order_for_shopper
from .services import payment_create

TEST_CARDS = [
    ("4242424242424242", "succeeds"),
    ("4000000000000002", "is declined"),
    ("4000000000009995", "times out twice, then succeeds"),
    ("4000000000000119", "fails with a server error every time"),
    ("4000000000003220", "succeeds after 20 seconds"),
]


def _own_order(request, order_id):
    order = order_for_shopper(order_id=order_id, user_id=request.user.id)
    if order is None:
        raise Http404("No such order.")  # someone else's order looks like a missing one
    return order


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def checkout_view(request, order_id):
    order = _own_order(request, order_id)
    error = None
    status = 200
    if request.method == "POST":
        try:
            payment_create(
                order_id=order.id,
                user_id=request.user.id,
                card_number=request.POST.get("card_number", ""),
                client_key="form-" + request.POST.get("nonce", "")[:64],
            )
            return redirect("checkout-page", order_id=order.id)
        except ApplicationError as exc:
            error, status = exc.detail, exc.status
            order = _own_order(request, order_id)
    payments = list(order.payments.all())
    latest = payments[0] if payments else None
    context = {
        "order": order,
        "sale": order.sale,
        "payments": payments,
        "latest": latest,
        "pending": latest is not None and latest.status == "PENDING",
        "nonce": uuid.uuid4().hex,
        "error": error,
        "test_cards": TEST_CARDS,
        "ws_url": f"{settings.WS_PUBLIC_URL.rstrip('/')}/ws/orders/{order.id}/payment/",
        "decline_releases": settings.PAYMENT_DECLINE_RELEASES,
    }
    return render(request, "payments/checkout.html", context, status=status)


@never_cache
@login_required
@require_GET
def checkout_status_view(request, order_id):
    """The order and its payments as JSON, for the page's polling fallback."""
    return json_response(order_body(_own_order(request, order_id)))
