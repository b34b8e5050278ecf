"""Bench-only routes; included by flashsale/urls.py only when BENCH_ENDPOINTS=1."""

from django.urls import path

from .bench_views import bench_bare, bench_rowlock_purchase

urlpatterns = [
    path("bench/bare", bench_bare, name="bench-bare"),
    path(
        "bench/flash_sales/<str:sale_id>/purchase_rowlock",
        bench_rowlock_purchase,
        name="bench-rowlock-purchase",
    ),
]
