"""The checkout page: countdown, the card form (number, expiry, CVC, name; the gateway
decides), confirm; then the outcome, live. The test cards are listed in demo mode only."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from apps.core.errors import ApplicationError
from apps.core.http import json_response

from .selectors import order_body, order_for_shopper
from .services import payment_create

# The simulated gateway's test cards, shown on the checkout page in demo mode only.
TEST_CARDS = [
    ("4242 4242 4242 4242", "succeeds"),
    ("4000 0000 0000 0002", "is declined"),
    ("4000 0000 0000 0127", "is declined: incorrect security code"),
    ("4000 0000 0000 9995", "times out twice, then succeeds"),
    ("4000 0000 0000 0119", "fails with a server error every time"),
    ("4000 0000 0000 3220", "succeeds after 20 seconds"),
]
_EXPIRY = re.compile(r"\s*([0-9]{1,2})\s*/\s*([0-9]{2}|[0-9]{4})\s*", re.ASCII)


def _own_order(request, order_id):
    order = order_for_shopper(order_id=order_id, user_id=request.user.id)
    if order is None:
        raise Http404("No such order.")  # someone else's order looks like a missing one
    return order


def _expiry(value: str) -> tuple[str, str]:
    """ "MM / YY" (or MM/YYYY) as typed into the form → (month, year); the gateway judges
    them. Anything else is refused here with a plain message."""
    match = _EXPIRY.fullmatch(value or "")
    if match is None:
        raise ApplicationError(
            "Enter your card's expiry date as MM / YY.", code="invalid_expiry", status=400
        )
    return match.group(1), match.group(2)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("card_number", "cvc", "expiry")
def checkout_view(request, order_id):
    order = _own_order(request, order_id)
    error = None
    status = 200
    if request.method == "POST":
        try:
            exp_month, exp_year = _expiry(request.POST.get("expiry", ""))
            payment_create(
                order_id=order.id,
                user_id=request.user.id,
                card_number=request.POST.get("card_number", ""),
                exp_month=exp_month,
                exp_year=exp_year,
                cvc=request.POST.get("cvc", ""),
                cardholder_name=request.POST.get("name", "")[:100],
                client_key="form-" + request.POST.get("nonce", "")[:64],
            )
            return redirect("checkout-page", order_id=order.id)
        except ApplicationError as exc:
            error, status = _form_error(exc), exc.status
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
        "test_cards": TEST_CARDS if settings.DEMO_MODE else None,
        "name_on_card": request.POST.get("name", "")[:100] if request.method == "POST" else "",
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


def _form_error(exc: ApplicationError) -> str:
    if exc.code == "invalid_card_number":
        return "Enter the 12 to 19 digits of your card number."
    return exc.detail
