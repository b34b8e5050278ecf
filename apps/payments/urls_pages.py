from django.urls import path

from .views import checkout_status_view, checkout_view

urlpatterns = [
    path("orders/<uuid:order_id>/pay/", checkout_view, name="checkout-page"),
    path("orders/<uuid:order_id>/pay/status", checkout_status_view, name="checkout-status"),
]
