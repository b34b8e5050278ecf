from django.urls import path

from .apis import SaleDetailApi, SaleListApi

urlpatterns = [
    path("flash_sales/", SaleListApi.as_view(), name="sale-list"),
    path("flash_sales/<str:sale_id>", SaleDetailApi.as_view(), name="sale-detail"),
]
