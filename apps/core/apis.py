import time

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .errors import NotAuthenticated
from .schema import error_responses
from .serializers import StrictInputSerializer
from .tokens import shopper_token_issue


class TokenCreateApi(APIView):
    """Exchange a shopper's username and password for a short-lived bearer token."""

    authentication_classes: list = []

    class InputSerializer(StrictInputSerializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        access_token = serializers.CharField()
        token_type = serializers.CharField()
        expires_in = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(401)},
        auth=[],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None or not user.is_active:
            raise NotAuthenticated("Wrong username or password.", code="invalid_credentials")
        token, expires = shopper_token_issue(user_id=user.id, username=user.get_username())
        return Response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": expires - int(time.time()),
            }
        )
