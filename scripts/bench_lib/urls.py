"""The bench server's URLconf (ROOT_URLCONF of scripts/bench_lib/settings.py): the shop's own
routes plus the bench-only ones, so the production URLconf carries no bench code."""

from django.urls import path

from flashsale.urls import handler400, handler403, handler404, handler500, urlpatterns

from .bench_views import bench_bare, bench_bare_redis, bench_rowlock_purchase

urlpatterns = [
    path("api/v1/bench/bare", bench_bare, name="bench-bare"),
    path("api/v1/bench/bare_redis", bench_bare_redis, name="bench-bare-redis"),
    path(
        "api/v1/bench/flash_sales/<str:sale_id>/purchase_rowlock",
        bench_rowlock_purchase,
        name="bench-rowlock-purchase",
    ),
    *urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
