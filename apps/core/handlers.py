"""One WSGI application, two middleware chains: the JSON API (``/api/``) skips what only
pages use (sessions, messages, the session user, CSRF, static files), and everything else
gets the full chain (``MIDDLEWARE``). Both keep the security headers, the metrics, the
protection (rate limits, block list, load shedding) and the database-unavailable 503.

The API authenticates with Bearer tokens alone (apps.core.authentication): no API view reads
a session or a cookie, so the session, auth and CSRF middleware would only cost time there."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler


class MiddlewareChainHandler(WSGIHandler):
    """Django's WSGI handler with a middleware list of its own instead of ``MIDDLEWARE``."""

    def __init__(self, middleware: list[str]):
        self.middleware_paths = list(middleware)
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE; this runs once, while the
        # process starts (before any request thread), so the swap is never seen.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = self.middleware_paths
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class PathDispatch:
    """The WSGI application: requests under ``API_PATH_PREFIX``, and the shared pages
    (``SHARED_PAGE_PATHS``: the same for every shopper, no session read), to the lean chain."""

    def __init__(self):
        self.prefix = settings.API_PATH_PREFIX
        self.shared_pages = re.compile(settings.SHARED_PAGE_PATHS)
        self.site = WSGIHandler()
        self.api = MiddlewareChainHandler(settings.API_MIDDLEWARE)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.prefix) or self.shared_pages.fullmatch(path):
            return self.api(environ, start_response)
        return self.site(environ, start_response)
