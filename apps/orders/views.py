"""The shopper's own pages: My orders, one order (reservation or receipt), and the small
per-shopper JSON that the shared, cached sale page and the queue page ask for."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.errors import ApplicationError
from apps.core.redis import RedisError
from apps.sales.selectors import sale_snapshot
from apps.waiting_room.services import waiting_room_position

from .models import Order, OrderStatus
from .selectors import (
    order_of_shopper,
    order_that_matters_in_sale,
    orders_of_shopper,
    units_held_in_sale,
)


@require_GET
@never_cache
@login_required
def order_list_view(request):
    orders = list(orders_of_shopper(user_id=request.user.id)[:200])
    return render(request, "orders/list.html", {"orders": orders})


@require_GET
@never_cache
@login_required
def order_detail_view(request, order_id):
    order = order_of_shopper(user_id=request.user.id, order_id=order_id)
    if order is None:
        raise Http404("No such order.")
    return render(request, "orders/detail.html", {"order": order, "sale": order.sale})


def _ms(value) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _order_body(order: Order) -> dict:
    return {
        "id": str(order.id),
        "status": order.status,
        "status_label": order.get_status_display(),
        "quantity": order.quantity,
        "amount": str(order.amount),
        "currency": order.currency,
        "url": f"/orders/{order.id}/",
        "pay_url": f"/orders/{order.id}/pay/" if order.status == OrderStatus.RESERVED else None,
        "reserved_until_ms": _ms(order.reserved_until),
    }


def _in_queue(sale, user_id: int) -> bool | None:
    """Whether the shopper holds a place in the room (None when Redis cannot say)."""
    try:
        waiting_room_position(sale=sale, user_id=user_id, claim=False)
    except ApplicationError as error:
        return False if error.code == "not_in_queue" else None
    except RedisError:
        return None
    return True


@require_GET
@never_cache
def sale_shopper_state_view(request, sale_id):
    """GET /sales/<id>/me: this shopper's state in one sale (private, never cached), so the
    shared sale page can say "You bought this" without per-shopper HTML in any cache."""
    sale = sale_snapshot(str(sale_id))
    if sale is None:
        return JsonResponse({"error": "not_found", "detail": "No such sale."}, status=404)
    if not request.user.is_authenticated:
        return JsonResponse({"signed_in": False, "order": None, "at_limit": False})
    order = order_that_matters_in_sale(user_id=request.user.id, sale_id=sale.id)
    held = units_held_in_sale(user_id=request.user.id, sale_id=sale.id)
    return JsonResponse(
        {
            "signed_in": True,
            "order": None if order is None else _order_body(order),
            "units_held": held,
            "max_per_user": sale.max_per_user,
            "at_limit": held >= sale.max_per_user,
            "in_queue": _in_queue(sale, request.user.id),
        }
    )
