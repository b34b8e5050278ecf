from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import NotFound
from apps.core.schema import error_responses
from apps.sales.selectors import sale_snapshot

from .pow import challenge_issue
from .services import sale_protection


class ChallengeApi(APIView):
    """A proof-of-work challenge for joining the sale's waiting room."""

    authentication_classes: list = []
    permission_classes: list = []

    class OutputSerializer(serializers.Serializer):
        challenge = serializers.CharField(help_text="Signed, expiring; send it back once.")
        difficulty = serializers.IntegerField(
            help_text="Leading zero bits SHA-256(challenge + ':' + nonce) must have (0: none)."
        )
        expires_in = serializers.IntegerField()

    @extend_schema(
        operation_id="flash_sale_challenge",
        responses={200: OutputSerializer, **error_responses(404)},
        auth=[],
    )
    def get(self, request, sale_id: str):
        sale = sale_snapshot(str(sale_id))
        if sale is None:
            raise NotFound("No such sale.", code="sale_not_found")
        difficulty = sale_protection(sale).pow_difficulty
        return Response(
            self.OutputSerializer(
                {
                    "challenge": challenge_issue(sale_id=sale.id, difficulty=difficulty),
                    "difficulty": difficulty,
                    "expires_in": settings.POW_CHALLENGE_SECONDS,
                }
            ).data,
            headers={"Cache-Control": "no-store"},
        )
