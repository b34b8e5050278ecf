from django.urls import path

from .views import queue_view

urlpatterns = [
    path("sales/<uuid:sale_id>/queue/", queue_view, name="queue-page"),
]
