"""Waiting-room APIs. Plain Django views like the purchase: ten million shoppers join and
poll these, and each answer is one Redis script, with no database query."""

from __future__ import annotations

from django.views.decorators.csrf import csrf_exempt

from apps.core.authentication import shopper_from_authorization
from apps.core.errors import ApplicationError, NotFound, ServiceUnavailable
from apps.core.http import error_response, json_response, parse_json_object
from apps.core.redis import RedisError
from apps.protection.services import join_screen
from apps.sales.selectors import sale_snapshot

from .selectors import room_now_serving
from .services import waiting_room_join, waiting_room_position


def _sale_or_404(sale_id):
    sale = sale_snapshot(str(sale_id))
    if sale is None:
        raise NotFound("No such sale.", code="sale_not_found")
    return sale


def _method(request, allowed: str) -> None:
    if request.method != allowed:
        raise ApplicationError(f"Use {allowed}.", code="method_not_allowed", status=405)


@csrf_exempt
def join_api(request, sale_id):
    """POST: join the sale's waiting room (joining twice keeps the place)."""
    try:
        _method(request, "POST")
        shopper = shopper_from_authorization(request.headers.get("Authorization", ""))
        body = parse_json_object(request.body)
        sale = _sale_or_404(sale_id)
        verdict = join_screen(request=request, sale=sale, user_id=shopper.id, body=body)
        place = waiting_room_join(
            sale=sale, user_id=shopper.id, back_of_queue=bool(verdict.back_of_queue)
        )
    except ApplicationError as error:
        return error_response(error)
    return json_response(place, headers={"Cache-Control": "no-store"})


def position_api(request, sale_id):
    """GET: the shopper's place; when ready, their admission token."""
    try:
        _method(request, "GET")
        shopper = shopper_from_authorization(request.headers.get("Authorization", ""))
        sale = _sale_or_404(sale_id)
        place = waiting_room_position(sale=sale, user_id=shopper.id)
    except ApplicationError as error:
        return error_response(error)
    return json_response(place, headers={"Cache-Control": "no-store"})


def now_serving_api(request, sale_id):
    """GET (public): the sale's progress, the same for everyone, cacheable for a second."""
    try:
        _method(request, "GET")
        sale = _sale_or_404(sale_id)
        try:
            body = room_now_serving(sale)
        except RedisError:
            raise ServiceUnavailable(
                "The waiting room is briefly unavailable.", code="waiting_room_unavailable"
            ) from None
    except ApplicationError as error:
        return error_response(error)
    return json_response(body, headers={"Cache-Control": "public, max-age=1"})
