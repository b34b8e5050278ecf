from django.urls import path

from .apis import purchase_api

urlpatterns = [
    path("flash_sales/<str:sale_id>/purchase", purchase_api, name="purchase"),
]
