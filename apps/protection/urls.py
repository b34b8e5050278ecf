from django.urls import path

from .apis import ChallengeApi

urlpatterns = [
    path("flash_sales/<str:sale_id>/challenge", ChallengeApi.as_view(), name="sale-challenge"),
]
