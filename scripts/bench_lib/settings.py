"""The bench server's settings: the production settings with a URLconf that adds the bench-only
views (scripts/bench_lib/urls.py). scripts/bench sets DJANGO_SETTINGS_MODULE to this module."""

from flashsale.settings.base import *  # noqa: F403

ROOT_URLCONF = "scripts.bench_lib.urls"
