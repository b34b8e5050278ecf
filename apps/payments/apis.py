"""JSON API of the payment flow for clients that are not the checkout page."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import NotAuthenticated, NotFound
from apps.core.serializers import StrictInputSerializer

from .selectors import order_body, order_for_shopper
from .services import payment_create


def _shopper_id(request) -> int:
    if not getattr(request.user, "is_authenticated", False):
        raise NotAuthenticated(
            "Send Authorization: Bearer <token>.", headers={"WWW-Authenticate": "Bearer"}
        )
    return request.user.id


class OrderPayApi(APIView):
    """Pay for a reserved order with a card. Returns at once (202); the charge runs in a
    worker. Idempotent per order and X-Idempotency-Key (default: per card)."""

    class InputSerializer(StrictInputSerializer):
        card_number = serializers.CharField(max_length=32)

    @extend_schema(request=InputSerializer, responses={202: dict})
    def post(self, request, order_id):
        user_id = _shopper_id(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payment, created = payment_create(
            order_id=order_id,
            user_id=user_id,
            card_number=data.validated_data["card_number"],
            client_key=request.headers.get("X-Idempotency-Key", ""),
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

    @extend_schema(responses={200: dict})
    def get(self, request, order_id):
        order = order_for_shopper(order_id=order_id, user_id=_shopper_id(request))
        if order is None:
            raise NotFound("No such order.", code="order_not_found")
        return Response(order_body(order))
