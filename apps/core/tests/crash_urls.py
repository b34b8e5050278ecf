"""The real URLconf plus a page and an API path that crash (for the 500 tests)."""

from django.urls import path

from flashsale.urls import *  # noqa: F403
from flashsale.urls import urlpatterns as real_urlpatterns


def crash(request):
    raise RuntimeError("crash on purpose")


urlpatterns = [path("crash", crash), path("api/v1/crash", crash), *real_urlpatterns]
