from django.urls import path

from .apis import SaleShopperOrderApi, purchase_api

urlpatterns = [
    path("flash_sales/<str:sale_id>/purchase", purchase_api, name="purchase"),
    path("flash_sales/<str:sale_id>/order", SaleShopperOrderApi.as_view(), name="sale-order"),
]
