from django.urls import path

from .consumers import sale_stream

websocket_urlpatterns = [
    path("ws/sales/<str:sale_id>/", sale_stream),
]
