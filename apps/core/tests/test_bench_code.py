"""The benchmark's own views (a bare JSON answer, the row-lock purchase baseline) live in
scripts/bench_lib and are mounted only by the bench server's URLconf, never by the shop's."""

from pathlib import Path

from django.conf import settings
from django.urls import Resolver404, get_resolver

ROOT = Path(__file__).resolve().parents[3]


def test_the_production_package_holds_no_bench_code():
    shipped = [ROOT / "apps", ROOT / "flashsale"]
    assert not [p for d in shipped for p in d.rglob("bench*.py")]
    assert "bench" not in (ROOT / "flashsale" / "urls.py").read_text().lower()
    assert not hasattr(settings, "BENCH_ENDPOINTS")


def test_the_bench_urlconf_adds_its_views_to_the_shops():
    shop = get_resolver("flashsale.urls")
    bench = get_resolver("scripts.bench_lib.urls")
    for path in ("/api/v1/bench/bare", "/api/v1/bench/flash_sales/1/purchase_rowlock"):
        assert bench.resolve(path)
        try:
            shop.resolve(path)
        except Resolver404:
            pass
        else:
            raise AssertionError(f"{path} is routed in production")
    for path in ("/healthz", "/api/v1/flash_sales/1/purchase"):
        assert bench.resolve(path).func == shop.resolve(path).func
