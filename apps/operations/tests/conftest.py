# The sales browser test's Chromium page and daphne server, for the console's browser test.
from apps.sales.tests.test_browser import browser_page, daphne  # noqa: F401
