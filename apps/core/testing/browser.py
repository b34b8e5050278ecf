"""Debian's headless Chromium for browser tests and scripts: where it is and how to start it
on a machine whose network reaches nothing but localhost (no background connections)."""

import contextlib
import os
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_browser():
    """A launched headless Chromium (Playwright's sync API), for a test's duration.

    Playwright's sync API runs an event loop in this thread, so Django's async-safety check is
    lifted meanwhile (the test's ORM calls stay synchronous). Those calls run in Playwright's
    greenlet, whose connections pytest-django's teardown cannot see: they are closed here."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run .ci/install-system-packages")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                connections.close_all()
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
