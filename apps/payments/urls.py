from django.urls import path

from .apis import OrderDetailApi, OrderPayApi

urlpatterns = [
    path("orders/<str:order_id>/pay", OrderPayApi.as_view(), name="order-pay"),
    path("orders/<str:order_id>", OrderDetailApi.as_view(), name="order-detail"),
]
