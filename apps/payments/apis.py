"""JSON API of the payment flow for clients that are not the checkout page."""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import NotAuthenticated, NotFound
from apps.core.http import idempotency_key_header
from apps.core.schema import error_responses
from apps.core.serializers import StrictInputSerializer

from .selectors import order_body, order_for_shopper
from .services import payment_create


def _shopper_id(request) -> int:
    if not getattr(request.user, "is_authenticated", False):
        raise NotAuthenticated(
            "Send Authorization: Bearer <token>.", headers={"WWW-Authenticate": "Bearer"}
        )
    return request.user.id


def _order_id(value: str) -> str:
    """The route takes any text so that a malformed id is this API's JSON 404, not a page."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound("No such order.", code="order_not_found") from None


ORDER_ID = OpenApiParameter("order_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
IDEMPOTENCY_KEY = OpenApiParameter(
    "X-Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Optional: one per payment attempt (default: one per card); 1-255 printable "
    "ASCII characters.",
    pattern="^[ -~]*[!-~][ -~]*$",
)


class PaymentSerializer(serializers.Serializer):
    payment_id = serializers.UUIDField()
    status = serializers.CharField(help_text="pending, succeeded, failed, ...")
    amount = serializers.CharField(help_text="Decimal, as text")
    currency = serializers.CharField()
    card_brand = serializers.CharField(help_text="visa, mastercard, amex, discover or unknown")
    card_last4 = serializers.CharField()
    attempts = serializers.IntegerField()
    failure_code = serializers.CharField(allow_null=True)
    failure_reason = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    settled_at = serializers.DateTimeField(allow_null=True)


class OrderPayApi(APIView):
    """Pay for a reserved order with a card. The card goes to the gateway at once (402 with
    a readable `detail` if the gateway refuses the number, expiry or CVC; nothing is
    written then); we keep its token, brand and last four digits. Returns 202; the charge
    runs in a worker. Idempotent per order and X-Idempotency-Key (default: per card)."""

    class InputSerializer(StrictInputSerializer):
        # Plain strings: the service and the gateway decide what is valid (ASCII digits).
        card_number = serializers.CharField(max_length=32)
        exp_month = serializers.CharField(max_length=4)
        exp_year = serializers.CharField(max_length=4)
        cvc = serializers.CharField(max_length=8)
        name = serializers.CharField(max_length=100, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        payment_id = serializers.UUIDField()
        status = serializers.CharField(help_text="pending at first; the order page follows it")
        order_id = serializers.UUIDField()
        replayed = serializers.BooleanField(help_text="True when an earlier request made it")

    @extend_schema(
        request=InputSerializer,
        parameters=[ORDER_ID, IDEMPOTENCY_KEY],
        responses={
            202: OutputSerializer,
            **error_responses(400, 401, 402, 403, 404, 409, 410, 422, 503),
        },
    )
    def post(self, request, order_id):
        user_id = _shopper_id(request)
        order_id = _order_id(order_id)
        client_key = idempotency_key_header(request, required=False) or ""
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        card = data.validated_data
        payment, created = payment_create(
            order_id=order_id,
            user_id=user_id,
            card_number=card["card_number"],
            exp_month=card["exp_month"],
            exp_year=card["exp_year"],
            cvc=card["cvc"],
            cardholder_name=card.get("name", ""),
            client_key=client_key,
        )
        return Response(
            {
                "payment_id": str(payment.id),
                "status": payment.status.lower(),
                "order_id": str(payment.order_id),
                "replayed": not created,
            },
            status=202,
        )


class OrderDetailApi(APIView):
    """The shopper's order: status, reservation_expires_at and payments. Others get 404."""

    class OutputSerializer(serializers.Serializer):
        order_id = serializers.UUIDField()
        sale_id = serializers.UUIDField()
        product = serializers.CharField()
        status = serializers.CharField(help_text="reserved, paid, expired, ...")
        status_reason = serializers.CharField(allow_null=True)
        quantity = serializers.IntegerField()
        amount = serializers.CharField(help_text="Decimal, as text")
        currency = serializers.CharField()
        reserved_at = serializers.DateTimeField(allow_null=True)
        reservation_expires_at = serializers.DateTimeField(allow_null=True)
        paid_at = serializers.DateTimeField(allow_null=True)
        payments = PaymentSerializer(many=True)

    @extend_schema(
        parameters=[ORDER_ID], responses={200: OutputSerializer, **error_responses(401, 404)}
    )
    def get(self, request, order_id):
        user_id = _shopper_id(request)
        order = order_for_shopper(order_id=_order_id(order_id), user_id=user_id)
        if order is None:
            raise NotFound("No such order.", code="order_not_found")
        return Response(order_body(order))
