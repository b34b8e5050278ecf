from django.urls import path

from . import views

urlpatterns = [
    path("metrics", views.metrics_view, name="metrics"),
    path("ops/sales/<uuid:sale_id>/", views.console_page, name="ops-console"),
    path("ops/sales/<uuid:sale_id>/figures", views.console_figures_api, name="ops-figures"),
    path(
        "ops/sales/<uuid:sale_id>/controls/<str:control>",
        views.console_control_api,
        name="ops-control",
    ),
    path("ops/sales/<uuid:sale_id>/events", views.sale_events_feed, name="ops-events"),
]
