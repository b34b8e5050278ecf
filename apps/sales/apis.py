from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import NotFound
from apps.core.schema import error_responses

from .selectors import SaleSnapshot, sale_snapshot, sale_snapshots_upcoming_or_live
from .services import sale_phase
from .stock import units_left

# Sale data is the same for everyone and changes rarely: a CDN may keep it this long.
PUBLIC_MAX_AGE = 1


class SaleOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    product_id = serializers.UUIDField()
    product_name = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()
    total_inventory = serializers.IntegerField()
    remaining_inventory = serializers.IntegerField(allow_null=True)
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()
    max_per_user = serializers.IntegerField()
    status = serializers.CharField(help_text="SCHEDULED, ACTIVE, COMPLETED or CANCELLED")
    phase = serializers.CharField(help_text="scheduled, live, sold_out, ended or cancelled")
    server_time = serializers.DateTimeField()


def sale_output(sale: SaleSnapshot, now) -> dict:
    """From the cached snapshot and Redis's unit count: no database query."""
    left = units_left(sale_id=sale.id)
    return SaleOutputSerializer(
        {
            "id": sale.id,
            "title": sale.title,
            "product_id": sale.product_id,
            "product_name": sale.product_name,
            "price": sale.unit_price,
            "currency": sale.currency,
            "total_inventory": sale.total_inventory,
            "remaining_inventory": left,
            "start_time": sale.start_time,
            "end_time": sale.end_time,
            "max_per_user": sale.max_per_user,
            "status": sale.status,
            "phase": sale_phase(sale, units_left=left, now=now),
            "server_time": now,
        }
    ).data


def _response_public(response: Response) -> Response:
    response["Cache-Control"] = f"public, max-age={PUBLIC_MAX_AGE}"
    return response


class SaleListApi(APIView):
    """Upcoming and live sales, soonest first."""

    authentication_classes: list = []

    @extend_schema(responses={200: SaleOutputSerializer(many=True)}, auth=[])
    def get(self, request):
        now = timezone.now()
        return _response_public(
            Response([sale_output(s, now) for s in sale_snapshots_upcoming_or_live()])
        )


class SaleDetailApi(APIView):
    """One sale: status, units left, start and end, and the server's clock for countdowns."""

    authentication_classes: list = []

    @extend_schema(responses={200: SaleOutputSerializer, **error_responses(404)}, auth=[])
    def get(self, request, sale_id):
        sale = sale_snapshot(sale_id)
        if sale is None:
            raise NotFound("No such sale.", code="sale_not_found")
        return _response_public(Response(sale_output(sale, timezone.now())))
