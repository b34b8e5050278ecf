"""Production settings exactly as a fresh install has them (no DEBUG in the environment),
plus two views that crash, for apps/core/tests/test_safe_defaults.py."""

from flashsale.settings.base import *  # noqa: F403

ROOT_URLCONF = "apps.core.tests.crash_urls"
