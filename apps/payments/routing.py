from django.urls import path

from .consumers import OrderPaymentConsumer

websocket_urlpatterns = [
    path("ws/orders/<uuid:order_id>/payment/", OrderPaymentConsumer.as_asgi()),
]
