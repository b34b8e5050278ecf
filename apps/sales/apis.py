from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import NotFound
from apps.inventory.services import units_left

from .selectors import sale_get, sales_upcoming_or_live
from .services import sale_phase


class SaleOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField(source="__str__")
    product_id = serializers.UUIDField()
    product_name = serializers.CharField(source="product.name")
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


def sale_output(sale, now) -> dict:
    left = units_left(sale_id=sale.id)
    sale.remaining_inventory = left
    sale.phase = sale_phase(sale, units_left=left, now=now)
    sale.server_time = now
    return SaleOutputSerializer(sale).data


class SaleListApi(APIView):
    """Upcoming and live sales, soonest first."""

    authentication_classes: list = []

    @extend_schema(responses={200: SaleOutputSerializer(many=True)}, auth=[])
    def get(self, request):
        now = timezone.now()
        return Response([sale_output(s, now) for s in sales_upcoming_or_live()[:100]])


class SaleDetailApi(APIView):
    """One sale: status, units left, start and end, and the server's clock for countdowns."""

    authentication_classes: list = []

    @extend_schema(responses={200: SaleOutputSerializer}, auth=[])
    def get(self, request, sale_id):
        sale = sale_get(sale_id=sale_id)
        if sale is None:
            raise NotFound("No such sale.", code="sale_not_found")
        return Response(sale_output(sale, timezone.now()))
