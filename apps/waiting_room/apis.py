"""Waiting-room APIs. Plain Django views like the purchase: ten million shoppers join and
poll these, and each answer is one Redis script, with no database query."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.authentication import request_shopper
from apps.core.errors import ApplicationError, BadRequest, NotFound, ServiceUnavailable
from apps.core.http import error_response, json_response, require_method
from apps.core.parsers import request_json_object
from apps.core.redis import RedisError
from apps.core.schema import openapi
from apps.sales.pages import public_page
from apps.sales.selectors import sale_snapshot

from .schema import JOIN, NOW_SERVING_OPERATION, POSITION
from .screening import join_screens_run
from .selectors import room_now_serving
from .services import waiting_room_join, waiting_room_position


def _sale_or_404(sale_id):
    sale = sale_snapshot(str(sale_id))
    if sale is None:
        raise NotFound("No such sale.", code="sale_not_found")
    return sale


def _method(request, allowed: str) -> None:
    require_method(request, allowed)


# The join's fields and the JSON types each may take (no nulls: absent is the way to omit).
JOIN_FIELDS = {"challenge": (str,), "nonce": (str, int), "website": (str,)}


def join_input(body: dict) -> dict:
    unknown = sorted(set(body) - set(JOIN_FIELDS))
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}.", code="unknown_field")
    for name, value in body.items():
        if isinstance(value, bool) or not isinstance(value, JOIN_FIELDS[name]):
            kinds = " or ".join("a string" if t is str else "an integer" for t in JOIN_FIELDS[name])
            raise BadRequest(f"{name} must be {kinds}.", code="invalid_input")
    return body


@csrf_exempt
@openapi(post=JOIN)
def join_api(request, sale_id):
    """POST: join the sale's waiting room (joining twice keeps the place)."""
    try:
        _method(request, "POST")
        shopper = request_shopper(request)
        body = join_input(request_json_object(request))
        sale = _sale_or_404(sale_id)
        screened = join_screens_run(request=request, sale=sale, user_id=shopper.id, body=body)
        place = waiting_room_join(
            sale=sale,
            user_id=shopper.id,
            back_of_queue=screened.back_of_queue,
            screen=screened.step,
        )
    except ApplicationError as error:
        return error_response(error)
    return json_response(place, headers={"Cache-Control": "no-store"})


@csrf_exempt  # Bearer-token API: no cookies to forge; any other method gets a JSON 405
@openapi(get=POSITION)
def position_api(request, sale_id):
    """GET: the shopper's place; when ready, their admission token."""
    try:
        _method(request, "GET")
        shopper = request_shopper(request)
        sale = _sale_or_404(sale_id)
        place = waiting_room_position(sale=sale, user_id=shopper.id)
    except ApplicationError as error:
        return error_response(error)
    return json_response(place, headers={"Cache-Control": "no-store"})


def _now_serving_answer(sale_id) -> HttpResponse:
    try:
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


@csrf_exempt  # public and read-only: any other method gets a JSON 405, not a CSRF page
@openapi(get=NOW_SERVING_OPERATION)
def now_serving_api(request, sale_id):
    """GET (public): the sale's progress, the same for everyone, cacheable for a second (and
    answered from the process's memory of it for PUBLIC_PAGE_SECONDS: the waiting pages whose
    socket failed all poll this)."""
    try:
        _method(request, "GET")
    except ApplicationError as error:
        return error_response(error)
    return public_page(request.path, lambda: _now_serving_answer(sale_id))
