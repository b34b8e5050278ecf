from django.urls import path

from .views import me_view, sale_detail_view, sale_list_view, server_time_view

urlpatterns = [
    path("", sale_list_view, name="sale-list-page"),
    path("sales/<uuid:sale_id>/", sale_detail_view, name="sale-page"),
    path("time", server_time_view, name="server-time"),
    path("me", me_view, name="me"),
]
