from django.urls import path

from .views import order_detail_view, order_list_view, sale_shopper_state_view

urlpatterns = [
    path("orders/", order_list_view, name="order-list-page"),
    path("orders/<uuid:order_id>/", order_detail_view, name="order-page"),
    path("sales/<uuid:sale_id>/me", sale_shopper_state_view, name="sale-shopper-state"),
]
