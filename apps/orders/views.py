"""The shopper's own pages: My orders, one order (reservation or receipt), and the small
per-shopper JSON that the shared, cached sale page and the queue page ask for."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.errors import ApplicationError
from apps.core.redis import RedisError
from apps.sales.selectors import sale_snapshot
from apps.waiting_room.services import waiting_room_position

from .models import OrderStatus
from .selectors import order_of_shopper, orders_of_shopper, shopper_sale_orders


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


def _order_body(summary: dict) -> dict:
    """The order a sale's pages should name (from shopper_sale_orders), as their JS reads it:
    links relative to this site, the reservation's end in epoch milliseconds."""
    status = summary["status"].upper()
    expires = summary["reservation_expires_at"]
    order_url = f"/orders/{summary['order_id']}/"
    return {
        "id": summary["order_id"],
        "status": status,
        "status_label": OrderStatus(status).label,
        "quantity": summary["quantity"],
        "url": order_url,
        "pay_url": order_url + "pay/" if summary["payment_url"] else None,
        "reserved_until_ms": (
            int(datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp() * 1000)
            if expires
            else None
        ),
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
    orders = shopper_sale_orders(
        sale_id=sale.id, user_id=request.user.id, max_per_user=sale.max_per_user
    )
    return JsonResponse(
        {
            "signed_in": True,
            "order": _order_body(orders["order"]) if orders["order"] else None,
            "units_held": orders["units_held"],
            "max_per_user": sale.max_per_user,
            "at_limit": not orders["can_queue"],
            "in_queue": _in_queue(sale, request.user.id),
        }
    )
