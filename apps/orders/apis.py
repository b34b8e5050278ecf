"""Order APIs. The purchase is a plain Django view rather than a DRF one: it is the hot path,
and DRF's request wrapping costs a measurable share of it; it keeps the same JSON errors."""

from __future__ import annotations

import uuid

from django.views.decorators.csrf import csrf_exempt

from apps.core.authentication import shopper_from_authorization
from apps.core.errors import ApplicationError, BadRequest, NotFound
from apps.core.http import error_response, json_response, parse_json_object
from apps.sales.selectors import sale_snapshot

from .services import order_reserve
from .services.purchase import SoldOut, sale_known_sold_out

MAX_QUANTITY = 1000
MAX_KEY_LENGTH = 255


def purchase_input(body: dict) -> tuple[int, str | None]:
    unknown = set(body) - {"quantity", "product_id"}
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="invalid_input")
    quantity = body.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise BadRequest("quantity must be a whole number.", code="invalid_quantity")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise BadRequest(f"quantity must be between 1 and {MAX_QUANTITY}.", code="invalid_quantity")
    product_id = body.get("product_id")
    if product_id is not None:
        try:
            product_id = str(uuid.UUID(str(product_id)))
        except ValueError:
            raise BadRequest("product_id must be a UUID.", code="invalid_product_id") from None
    return quantity, product_id


def idempotency_key_from(request) -> str:
    key = request.headers.get("X-Idempotency-Key", "").strip()
    if not key:
        raise BadRequest(
            "Send an X-Idempotency-Key header (one per purchase attempt).",
            code="missing_idempotency_key",
        )
    if len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadRequest(
            f"X-Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters.",
            code="invalid_idempotency_key",
        )
    return key


@csrf_exempt
def purchase_api(request, sale_id):
    try:
        if request.method != "POST":
            raise ApplicationError("Use POST.", code="method_not_allowed", status=405)
        shopper = shopper_from_authorization(request.headers.get("Authorization", ""))
        sale_id = str(sale_id)
        if sale_known_sold_out(sale_id):
            raise SoldOut("Sold out: every unit is taken.")
        idempotency_key = idempotency_key_from(request)
        quantity, product_id = purchase_input(parse_json_object(request.body))
        sale = sale_snapshot(sale_id)
        if sale is None:
            raise NotFound("No such sale.", code="sale_not_found")
        reservation = order_reserve(
            sale=sale,
            user_id=shopper.id,
            quantity=quantity,
            idempotency_key=idempotency_key,
            product_id=product_id,
        )
    except ApplicationError as error:
        return error_response(error)
    return json_response(reservation.body, status=201 if reservation.created else 200)
