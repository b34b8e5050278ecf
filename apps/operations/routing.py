from django.urls import path

from .consumers import ConsoleConsumer

websocket_urlpatterns = [path("ws/ops/sales/<str:sale_id>/", ConsoleConsumer.as_asgi())]
