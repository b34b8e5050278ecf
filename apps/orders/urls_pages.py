from django.urls import path

from .views import order_detail_view

urlpatterns = [
    path("orders/<uuid:order_id>/", order_detail_view, name="order-page"),
]
