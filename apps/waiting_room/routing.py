from django.urls import path

from .consumers import SaleConsumer

websocket_urlpatterns = [
    path("ws/sales/<str:sale_id>/", SaleConsumer.as_asgi()),
]
