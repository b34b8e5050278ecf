"""Django itself: the mode, apps, middleware, URLs, templates, authentication, static files."""

from .env import BASE_DIR, env
from .observability import OBSERVABILITY

# Safe by default: DEBUG is off unless set. With DEBUG off every process refuses to start on a
# default or weak SECRET_KEY / JWT_KEYS (flashsale/settings/security.py and keys.py).
DEBUG = env.bool("DEBUG", default=False)
# The demo (`make run`): plain HTTP on loopback, generated keys, the test cards shown. It says
# so in its banner; never set in production.
DEMO_MODE = env.bool("DEMO_MODE", default=False)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the API docs' Redoc, served by us (no CDN)
    "channels",
    "django_celery_beat",
    "django_ratelimit",
    "apps.core",
    "apps.accounts",
    "apps.sales",
    "apps.orders",
    "apps.inventory",
    "apps.waiting_room",
    "apps.payments",
    "apps.protection",
    "apps.operations",
]

# Every request, in this order:
MIDDLEWARE = [
    # The Content Security Policy and Permissions-Policy, on every answer, refusals included.
    "apps.protection.middleware.SecurityHeadersMiddleware",
    # A request id for the request and its logs; its duration, route and outcome in the
    # metrics. OBSERVABILITY=0 (scripts/bench only) leaves it out to measure what it costs.
    *(["apps.core.middleware.ObservabilityMiddleware"] if OBSERVABILITY else []),
    # Rate limits, block list, load shedding and the bot screen's cookies
    # (flashsale/settings/protection.py): a refused request goes no further.
    "apps.protection.middleware.ProtectionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # PostgreSQL refusing a connection: 503 + Retry-After on every endpoint (apps/core/views.py).
    "apps.core.middleware.DatabaseUnavailableMiddleware",
]

# The JSON API (/api/) authenticates with Bearer tokens only: its chain skips the middleware
# only pages use (apps/core/handlers.py). Tests reach it through flashsale.wsgi.application.
API_PATH_PREFIX = "/api/"
_PAGES_ONLY = {
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
}
API_MIDDLEWARE = [m for m in MIDDLEWARE if m not in _PAGES_ONLY]
# The shared pages (the list and a sale page) read no session, cookie or user either (they are
# the same bytes for everyone, apps/sales/pages.py): the herd's page loads take the lean chain.
SHARED_PAGE_PATHS = r"/(sales/[0-9a-fA-F-]{36}/)?"

ROOT_URLCONF = "flashsale.urls"
WSGI_APPLICATION = "flashsale.wsgi.application"
ASGI_APPLICATION = "flashsale.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Password checks go through the login limiter (apps/protection/logins.py; its delays and
# concurrency are in flashsale/settings/protection.py).
AUTHENTICATION_BACKENDS = ["apps.protection.logins.LimitedModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Public addresses the pages and API responses point at.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
# Where the pages' JavaScript opens its WebSocket (daphne in development, the proxy in production).
WS_PUBLIC_URL = env("WS_PUBLIC_URL", default="ws://127.0.0.1:8001")
