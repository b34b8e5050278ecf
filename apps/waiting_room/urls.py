from django.urls import path

from .apis import join_api, now_serving_api, position_api

urlpatterns = [
    path("flash_sales/<str:sale_id>/waiting_room", join_api, name="waiting-room-join"),
    path(
        "flash_sales/<str:sale_id>/waiting_room/position",
        position_api,
        name="waiting-room-position",
    ),
    path(
        "flash_sales/<str:sale_id>/waiting_room/now_serving",
        now_serving_api,
        name="waiting-room-now-serving",
    ),
]
