"""Order APIs. The purchase is a plain Django view rather than a DRF one: it is the hot path,
and DRF's request wrapping costs a measurable share of it; it keeps the same JSON errors."""

from __future__ import annotations

import uuid

from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.accounts import AccountInactive
from apps.core.authentication import request_bearer, token_is_malformed
from apps.core.errors import ApplicationError, BadRequest, Forbidden, NotAuthenticated, NotFound
from apps.core.http import error_response, idempotency_key_header, json_response, require_method
from apps.core.parsers import request_json_object
from apps.core.schema import error_responses, openapi
from apps.core.tokens import AUDIENCE_SHOPPER, TokenAccountInactive, TokenInvalid, token_decode
from apps.sales.selectors import sale_snapshot
from apps.waiting_room.tokens import Admission, admission_from_claims

from .schema import PURCHASE
from .selectors import shopper_sale_orders
from .services import order_reserve
from .services.purchase import sold_out_refusal

MAX_QUANTITY = 1000


def purchase_input(body: dict) -> tuple[int, str | None]:
    unknown = set(body) - {"quantity", "product_id"}
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="unknown_field")
    quantity = body.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise BadRequest("quantity must be a whole number.", code="invalid_quantity")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise BadRequest(f"quantity must be between 1 and {MAX_QUANTITY}.", code="invalid_quantity")
    product_id = body.get("product_id")
    if "product_id" in body:  # present means a UUID: null is refused like any other non-UUID
        try:
            product_id = str(uuid.UUID(product_id))
        except (TypeError, ValueError, AttributeError):
            raise BadRequest("product_id must be a UUID.", code="invalid_product_id") from None
    return quantity, product_id


def idempotency_key_from(request) -> str:
    return idempotency_key_header(request, required=True)


class NotAdmitted(Forbidden):
    code = "not_admitted"


def admission_from(request, sale_id: str) -> Admission:
    """The admission the Bearer token grants for this sale, checked without a database hit
    (the token verified once per request, apps.core.authentication). No token or an
    unreadable one: 401. A valid-looking token that is not this sale's admission (a shopper
    token, another sale's, expired, forged, ``alg: none``): 403."""
    bearer = request_bearer(request)
    if bearer.token is None:
        raise NotAuthenticated(
            "Send Authorization: Bearer <admission token>.", headers={"WWW-Authenticate": "Bearer"}
        )
    if token_is_malformed(bearer):
        raise NotAuthenticated(
            "Invalid token: not a JWT.",
            code="invalid_token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if isinstance(bearer.error, TokenAccountInactive):
        raise AccountInactive()
    try:
        if bearer.error is not None:
            raise bearer.error
        admission = admission_from_claims(bearer.claims)
    except TokenInvalid as exc:
        raise NotAdmitted(
            f"Join the waiting room: purchases need an admission token ({exc}).",
            extra={"waiting_room_url": f"/api/v1/flash_sales/{sale_id}/waiting_room"},
        ) from None
    if admission.sale_id != sale_id:
        raise NotAdmitted("This admission token is for another sale.")
    # A client that also names its shopper (X-Shopper-Token) cannot buy on someone else's
    # admission; without it the admission token is the credential (short-lived, single-use).
    shopper_token = request.headers.get("X-Shopper-Token", "").strip()
    if shopper_token:
        try:
            shopper_id = int(token_decode(shopper_token, audience=AUDIENCE_SHOPPER)["sub"])
        except TokenAccountInactive:
            raise AccountInactive() from None
        except (TokenInvalid, KeyError, ValueError):
            raise NotAdmitted("X-Shopper-Token is not a valid shopper token.") from None
        if shopper_id != admission.user_id:
            raise NotAdmitted("This admission token belongs to another shopper.")
    return admission


@csrf_exempt
@openapi(post=PURCHASE)
def purchase_api(request, sale_id):
    try:
        require_method(request, "POST")
        sale_id = str(sale_id)
        admission = admission_from(request, sale_id)
        idempotency_key = idempotency_key_from(request)
        sold_out_refusal(sale_id=sale_id, user_id=admission.user_id)
        quantity, product_id = purchase_input(request_json_object(request))
        sale = sale_snapshot(sale_id)
        if sale is None:
            raise NotFound("No such sale.", code="sale_not_found")
        reservation = order_reserve(
            sale=sale,
            user_id=admission.user_id,
            quantity=quantity,
            idempotency_key=idempotency_key,
            product_id=product_id,
            admission=admission,
        )
    except ApplicationError as error:
        return error_response(error)
    return json_response(reservation.body, status=201 if reservation.created else 200)


class OrderSummarySerializer(serializers.Serializer):
    order_id = serializers.UUIDField()
    status = serializers.CharField()
    quantity = serializers.IntegerField()
    reservation_expires_at = serializers.DateTimeField(allow_null=True)
    order_url = serializers.CharField()
    payment_url = serializers.CharField(allow_null=True)
    receipt_url = serializers.CharField(allow_null=True)


class SaleShopperOrderApi(APIView):
    """GET: the shopper's own order(s) in this sale, as the sale and queue pages show them:
    status, the pay link while reserved, the receipt once paid, and whether they may queue
    again (only while their orders hold fewer units than the sale allows)."""

    class OutputSerializer(serializers.Serializer):
        sale_id = serializers.UUIDField()
        order = OrderSummarySerializer(allow_null=True, help_text="The one to show, if any")
        orders = OrderSummarySerializer(many=True)
        units_held = serializers.IntegerField()
        max_per_user = serializers.IntegerField()
        can_queue = serializers.BooleanField()

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 404)})
    def get(self, request, sale_id):
        if not getattr(request.user, "is_authenticated", False):
            raise NotAuthenticated(
                "Send Authorization: Bearer <token>.", headers={"WWW-Authenticate": "Bearer"}
            )
        sale = sale_snapshot(str(sale_id))
        if sale is None:
            raise NotFound("No such sale.", code="sale_not_found")
        return Response(
            shopper_sale_orders(
                sale_id=sale.id, user_id=request.user.id, max_per_user=sale.max_per_user
            ),
            headers={"Cache-Control": "no-store"},
        )
