"""Settings for every environment; differences come from environment variables."""

import hashlib
from pathlib import Path

import environ
from celery.schedules import crontab  # noqa: F401  (used by later schedules)
from kombu import Queue

from .keys import refuse_weak_keys

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# Safe by default: DEBUG is off unless set. With DEBUG off every process refuses to start on a
# default or weak SECRET_KEY / JWT_KEYS (flashsale/settings/keys.py, checked below).
DEBUG = env.bool("DEBUG", default=False)
# The demo (`make run`): plain HTTP on loopback, generated keys, the test cards shown. It says
# so in its banner; never set in production.
DEMO_MODE = env.bool("DEMO_MODE", default=False)
SECRET_KEY = env("SECRET_KEY", default="dev-insecure-secret-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

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

MIDDLEWARE = [
    "apps.core.middleware.ObservabilityMiddleware",
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

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/flashsale"),
}
DATABASES["default"].setdefault("OPTIONS", {})
# Fail fast instead of hanging when PostgreSQL is gone.
DATABASES["default"]["OPTIONS"].setdefault(
    "connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=3)
)
# Connections: a bounded psycopg pool per process (Django 5.2), so a node holds at most
# DB_POOL_MAX_SIZE connections per process whatever its thread count (README, "Connections per
# node"). 16 is what the purchase path needs for PostgreSQL's group commit (docs/benchmarks.md:
# 16 concurrent commits ~1,300/s on this disk); more threads than that wait for a connection at
# most DB_POOL_TIMEOUT, then answer 503 with Retry-After. DB_POOL_MAX_SIZE=0 turns the pool off
# (persistent per-thread connections, CONN_MAX_AGE), e.g. behind PgBouncer in transaction mode.
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=16)
if DB_POOL_MAX_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django requires it with a pool
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": env.float("DB_POOL_TIMEOUT", default=1.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# A connection PostgreSQL dropped (restart, failover, pg_terminate_backend) is noticed before a
# request uses it (with the pool, Django hands psycopg_pool its check_connection).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# This install's name, by default its database's: it names the Celery queue, the Redis key
# prefix and (with host and port) the merchant identity on the payment gateway, so a second
# install on the same PostgreSQL, Redis and RabbitMQ shares none of them.
INSTALL_NAME = env("INSTALL_NAME", default=DATABASES["default"]["NAME"])

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Prefix for every key this project writes, so test runs and demos can share one server.
# ("fs-<install>:", not "fs:<install>:", so one install's "fs:*" never matches another's keys.)
REDIS_KEY_PREFIX = env(
    "REDIS_KEY_PREFIX", default="fs:" if INSTALL_NAME == "flashsale" else f"fs-{INSTALL_NAME}:"
)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX + "cache",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
        },
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": REDIS_KEY_PREFIX + "ws"},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.core.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # One bounded JSON parser (size, depth, duplicate keys) shared with the hand-written views.
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JsonBodyParser"],
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.ApiAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flash sale API",
    "DESCRIPTION": "Limited drops sold at an exact instant, each unit at most once. "
    'Every error is JSON {"error": code, "detail": sentence}.',
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.0.3",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.complete_schema",
    ],
    # /api/docs/ works offline: Redoc from drf-spectacular-sidecar, served as static files.
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# JWTs: HS256 pinned; keys as "kid:secret,kid:secret"; the first signs, all verify (rotation).
JWT_KEYS = env("JWT_KEYS", default="")
JWT_ISSUER = env("JWT_ISSUER", default="flashsale")
USER_TOKEN_SECONDS = env.int("USER_TOKEN_SECONDS", default=3600)
refuse_weak_keys(debug=DEBUG, secret_key=SECRET_KEY, jwt_keys=JWT_KEYS)

# Public addresses the pages and API responses point at.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# Purchases: a process remembers a sold-out sale this long before asking Redis again.
SOLD_OUT_MEMORY_SECONDS = env.float("SOLD_OUT_MEMORY_SECONDS", default=1.0)
SALE_SNAPSHOT_SECONDS = env.float("SALE_SNAPSHOT_SECONDS", default=1.0)
IDEMPOTENCY_TTL_SECONDS = env.int("IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
# A Redis hold with no PostgreSQL order after this long is an orphan and goes back.
ORPHAN_GRACE_SECONDS = env.int("ORPHAN_GRACE_SECONDS", default=30)

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="amqp://guest:guest@127.0.0.1:5672//")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default=INSTALL_NAME)
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE, durable=True),)
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "expire-reservations": {"task": "orders.expire_reservations", "schedule": 5.0},
    "sweep-orphan-holds": {"task": "inventory.sweep_orphans", "schedule": 15.0},
    "reconcile-inventory": {"task": "inventory.reconcile_all", "schedule": 120.0},
    "advance-sale-status": {"task": "sales.advance_status", "schedule": 5.0},
}

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="shop@flashsale.local")

# --- Benchmarks (issue 6) ---------------------------------------------------------------
# BENCH_ENDPOINTS=1 mounts the bench-only views (apps/orders/bench_urls.py): a bare JSON view
# and the row-lock purchase baseline. scripts/bench sets it on its own server; never in prod.
BENCH_ENDPOINTS = env.bool("BENCH_ENDPOINTS", default=False)

# --- Shopper pages and the sale cache (issue 3, pages) ---
# Where the pages' JavaScript opens its WebSocket (daphne in development, the proxy in production).
WS_PUBLIC_URL = env("WS_PUBLIC_URL", default="ws://127.0.0.1:8001")
# The Redis copy of a sale is refreshed from PostgreSQL after this long, by one request at a time
# (the others keep serving the copy they have); it is dropped after SALE_CACHE_TTL_SECONDS.
SALE_CACHE_FRESH_SECONDS = env.float("SALE_CACHE_FRESH_SECONDS", default=60.0)
SALE_CACHE_TTL_SECONDS = env.int("SALE_CACHE_TTL_SECONDS", default=24 * 3600)
# How long a request waits for another one to fill a cold cache before asking PostgreSQL itself.
SALE_CACHE_WAIT_SECONDS = env.float("SALE_CACHE_WAIT_SECONDS", default=2.0)
SALE_LIST_CACHE_SECONDS = env.int("SALE_LIST_CACHE_SECONDS", default=5)
# Sales starting within this many seconds are re-published to the cache by the beat task.
SALE_CACHE_WARM_AHEAD_SECONDS = env.int("SALE_CACHE_WARM_AHEAD_SECONDS", default=3600)
CELERY_BEAT_SCHEDULE["notice-sale-events"] = {
    "task": "operations.notice_sale_events",
    "schedule": 5.0,
}
CELERY_BEAT_SCHEDULE["warm-sale-cache"] = {"task": "sales.cache_warm", "schedule": 30.0}

# --- Protection (issue 5): rate limits, bots, load shedding, degraded modes, headers ---------
# RATELIMIT_ENABLE=0 turns the limits off (load tests run from one address). The sliding
# windows live in the Redis of this cache (apps/protection/ratelimits.py).
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
RATELIMIT_USE_CACHE = "default"
# django-ratelimit (the forms that send email: sign-up, password reset) reads the client address
# the way the protection middleware does, behind TRUSTED_PROXY_COUNT proxies.
RATELIMIT_IP_META_KEY = "apps.protection.services.client_ip"
EMAIL_FORM_RATE_PER_IP = env("EMAIL_FORM_RATE_PER_IP", default="10/h")
EMAIL_FORM_RATE_PER_EMAIL = env("EMAIL_FORM_RATE_PER_EMAIL", default="3/h")
# Per endpoint group: "user" and "ip" rates ("10/s", "20/m", "3/2h"), each a sliding window
# of that length; the first matching rule applies. RATE_LIMITS_JSON (a JSON object)
# overrides rates by group, e.g. '{"challenge": {"ip": "3/m"}}'.
RATE_LIMITS = {
    "token": {"path": r"^/api/v1/auth/token/?$", "methods": ["POST"], "ip": "20/m"},
    "challenge": {"path": r"^/api/v1/flash_sales/[^/]+/challenge/?$", "user": "5/s", "ip": "60/s"},
    "position": {
        "path": r"^/api/v1/flash_sales/[^/]+/waiting_room(/.*)?$",
        "methods": ["GET", "HEAD"],
        "user": "4/s",
        "ip": "400/s",
    },
    "join": {
        "path": r"^/api/v1/flash_sales/[^/]+/waiting_room(/.*)?$",
        "user": "10/s",
        "ip": "100/s",
    },
    "purchase": {"path": r"^/api/v1/flash_sales/[^/]+/purchase/?$", "user": "10/s", "ip": "200/s"},
    "checkout": {"path": r"^/api/v1/(orders|payments)/", "user": "10/s", "ip": "200/s"},
    "api": {"path": r"^/api/", "user": "10/s", "ip": "300/s"},
}
for _group, _override in env.json("RATE_LIMITS_JSON", default={}).items():
    RATE_LIMITS.setdefault(_group, {"path": r"^$"}).update(_override)
# Client address: REMOTE_ADDR, or the n-th address from the right of X-Forwarded-For when
# n trusted proxies (nginx, a load balancer) stand in front.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Load shedding: purchases in flight per process; past it, 503 at once.
PURCHASE_INFLIGHT_CAP = env.int("PURCHASE_INFLIGHT_CAP", default=64)
# Degraded mode (Redis down): purchases through PostgreSQL's guard, at most this many at once
# per process.
DEGRADED_PURCHASE_CONCURRENCY = env.int("DEGRADED_PURCHASE_CONCURRENCY", default=4)
# Bots: proof of work and scoring.
POW_CHALLENGE_SECONDS = env.int("POW_CHALLENGE_SECONDS", default=300)
BOT_ACCOUNTS_PER_IP = env.int("BOT_ACCOUNTS_PER_IP", default=5)
BOT_ACCOUNTS_PER_DEVICE = env.int("BOT_ACCOUNTS_PER_DEVICE", default=2)
BOT_MIN_PAGE_SECONDS = env.float("BOT_MIN_PAGE_SECONDS", default=1.0)
# Readiness: the dependencies whose loss takes this process out of the load balancer. By
# default none alone does (purchases degrade without Redis; pages render from cache without
# PostgreSQL); the process is unready only when all of them are gone.
READINESS_REQUIRED = env.list("READINESS_REQUIRED", default=[])
# Security headers.
WS_PUBLIC_URL = globals().get("WS_PUBLIC_URL") or env(
    "WS_PUBLIC_URL", default="ws://127.0.0.1:8001"
)
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", default=0 if (DEBUG or DEMO_MODE) else 31536000
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The demo serves plain HTTP on 127.0.0.1, where Secure cookies and HSTS do not apply.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool(
    "SECURE_COOKIES", default=not (DEBUG or DEMO_MODE)
)
SESSION_COOKIE_HTTPONLY = True
MIDDLEWARE.insert(0, "apps.protection.middleware.SecurityHeadersMiddleware")
MIDDLEWARE.insert(2, "apps.protection.middleware.ProtectionMiddleware")
CELERY_BEAT_SCHEDULE["resync-degraded-inventory"] = {
    "task": "protection.resync_degraded_inventory",
    "schedule": 5.0,
}
# A process keeps a copy of the block list this long (0: ask Redis on every request).
BLOCKLIST_MEMORY_SECONDS = env.float("BLOCKLIST_MEMORY_SECONDS", default=1.0)
# Deactivated or deleted accounts (apps/core/accounts.py): each process re-reads the set's
# version from Redis at most this often, so another process's change reaches it this late.
ACCOUNT_MEMORY_SECONDS = env.float("ACCOUNT_MEMORY_SECONDS", default=2.0)
CELERY_BEAT_SCHEDULE["restore-inactive-accounts"] = {
    "task": "core.inactive_accounts_restore",
    "schedule": 60.0,
}
# Password checks (apps/protection/logins.py): the first attempts per username and per
# address are free, then each waits twice as long as the previous one (from the base delay
# up to the longest); a record is forgotten this long after its last attempt. At most
# LOGIN_HASH_CONCURRENCY passwords are hashed at once per process; a check that cannot start
# within LOGIN_HASH_WAIT_SECONDS gets a 503 instead of holding a thread.
AUTHENTICATION_BACKENDS = ["apps.protection.logins.LimitedModelBackend"]
LOGIN_FREE_ATTEMPTS_PER_USERNAME = env.int("LOGIN_FREE_ATTEMPTS_PER_USERNAME", default=5)
LOGIN_FREE_ATTEMPTS_PER_IP = env.int("LOGIN_FREE_ATTEMPTS_PER_IP", default=20)
LOGIN_DELAY_BASE_SECONDS = env.float("LOGIN_DELAY_BASE_SECONDS", default=1.0)
LOGIN_DELAY_MAX_SECONDS = env.float("LOGIN_DELAY_MAX_SECONDS", default=900.0)
LOGIN_MEMORY_SECONDS = env.int("LOGIN_MEMORY_SECONDS", default=3600)
LOGIN_HASH_CONCURRENCY = env.int("LOGIN_HASH_CONCURRENCY", default=1)
LOGIN_HASH_WAIT_SECONDS = env.float("LOGIN_HASH_WAIT_SECONDS", default=0.5)
# --- end protection ----------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- Payments (issue 4): gateways, retries, circuit breaker, expiry bound, jobs -----------
# The gateway implementation is one option (a dotted class path); the simulated gateway is a
# service of its own (Procfile "gateway"). A backup gateway is used while the primary's
# circuit is open and by the dead-letter job.
PAYMENT_GATEWAY_CLASS = env(
    "PAYMENT_GATEWAY_CLASS", default="apps.payments.gateways.simulated.SimulatedGateway"
)
PAYMENT_GATEWAY_URL = env("PAYMENT_GATEWAY_URL", default="http://127.0.0.1:8010")
PAYMENT_BACKUP_GATEWAY_URL = env("PAYMENT_BACKUP_GATEWAY_URL", default="")
# The client gives up on one gateway call after this long (then retries, same key).
PAYMENT_GATEWAY_TIMEOUT = env.float("PAYMENT_GATEWAY_TIMEOUT", default=5.0)
PAYMENT_GATEWAYS = {
    "primary": {
        "CLASS": PAYMENT_GATEWAY_CLASS,
        "OPTIONS": {"url": PAYMENT_GATEWAY_URL, "timeout": PAYMENT_GATEWAY_TIMEOUT},
    },
}
if PAYMENT_BACKUP_GATEWAY_URL:
    PAYMENT_GATEWAYS["backup"] = {
        "CLASS": env("PAYMENT_BACKUP_GATEWAY_CLASS", default=PAYMENT_GATEWAY_CLASS),
        "OPTIONS": {"url": PAYMENT_BACKUP_GATEWAY_URL, "timeout": PAYMENT_GATEWAY_TIMEOUT},
    }
# Our identity on the gateway, sent with every charge: reconciliation acts only on charges
# carrying it (a provider account may be shared by several installs or systems). Derived
# from the database's host, port and name, so it is stable per install; set it explicitly
# in production, and to a different value on a staging copy of production's database.


def merchant_id_of(database: dict) -> str:
    where = f"{database.get('HOST', '')}:{database.get('PORT', '')}/{database['NAME']}"
    return f"{database['NAME']}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


PAYMENT_MERCHANT_ID = env("PAYMENT_MERCHANT_ID", default=merchant_id_of(DATABASES["default"]))
PAYMENT_PRIMARY_GATEWAY = "primary"
PAYMENT_BACKUP_GATEWAY = "backup" if PAYMENT_BACKUP_GATEWAY_URL else ""
# Retries of timeouts, 5xx and transient database/broker errors: Celery's backoff (1 s
# doubling, full jitter) capped at this, same idempotency key.
PAYMENT_RETRY_CAP_SECONDS = env.float("PAYMENT_RETRY_CAP_SECONDS", default=8.0)
PAYMENT_MAX_ATTEMPTS = env.int("PAYMENT_MAX_ATTEMPTS", default=8)
# Circuit breaker shared by all workers (Redis): opens after N consecutive failures,
# half-open probe after the open period, closes on a success.
PAYMENT_BREAKER_THRESHOLD = env.int("PAYMENT_BREAKER_THRESHOLD", default=5)
PAYMENT_BREAKER_OPEN_SECONDS = env.float("PAYMENT_BREAKER_OPEN_SECONDS", default=60.0)
# A reservation with a charge in flight is not expired until this long past reserved_until.
PAYMENT_SETTLE_GRACE_SECONDS = env.int("PAYMENT_SETTLE_GRACE_SECONDS", default=120)
# Reconciliation asks the gateway about PENDING payments untouched for this long.
PAYMENT_PENDING_STALE_SECONDS = env.int("PAYMENT_PENDING_STALE_SECONDS", default=60)
# How far back reconciliation reads the gateway's ledger of successful charges.
PAYMENT_RECONCILE_WINDOW_SECONDS = env.int("PAYMENT_RECONCILE_WINDOW_SECONDS", default=24 * 3600)
# A declined card releases the reservation at once (the order ends CANCELLED). False keeps
# the reservation so the shopper can try another card until it expires.
PAYMENT_DECLINE_RELEASES = env.bool("PAYMENT_DECLINE_RELEASES", default=True)
CELERY_BEAT_SCHEDULE["reconcile-payments"] = {"task": "payments.reconcile", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["process-payment-dead-letters"] = {
    "task": "payments.process_dead_letters",
    "schedule": 30.0,
}
# Notifications by email: the console backend in development (EMAIL_BACKEND above); in
# production EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and these.
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# --- end payments ---------------------------------------------------------------------------

# --- Waiting room (issue 3, waiting room) ---
# The releaser (manage.py run_releaser) ticks every open room this often; a tick credits at
# most WAITING_ROOM_LONGEST_GAP_MS of release after a pause, so a restart causes no burst.
WAITING_ROOM_TICK_SECONDS = env.float("WAITING_ROOM_TICK_SECONDS", default=0.1)
WAITING_ROOM_LONGEST_GAP_MS = env.int("WAITING_ROOM_LONGEST_GAP_MS", default=1000)
# Live sale messages: at most one per this interval per sale (a phase change goes at once),
# and an unchanged state is repeated this often as a heartbeat.
WAITING_ROOM_BROADCAST_SECONDS = env.float("WAITING_ROOM_BROADCAST_SECONDS", default=0.25)
WAITING_ROOM_HEARTBEAT_SECONDS = env.int("WAITING_ROOM_HEARTBEAT_SECONDS", default=5)
# --- end waiting room ---

# --- Scale-out (issue 14): Redis Cluster ---------------------------------------------------
# REDIS_CLUSTER_NODES=host:port,... (any seed nodes) puts everything that can run on a Redis
# Cluster there (apps/core/redis.py): scripts, records, the cache and the rate limits in it.
# REDIS_URL then serves only the Channels layer (pub/sub; channels-redis has no cluster mode).
REDIS_CLUSTER_NODES = env.list("REDIS_CLUSTER_NODES", default=[])
if REDIS_CLUSTER_NODES:
    CACHES["default"]["OPTIONS"]["CONNECTION_FACTORY"] = "apps.core.redis.ClusterConnectionFactory"
# --- end scale-out ---

from .observability import *  # noqa: E402, F403

if not OBSERVABILITY:  # noqa: F405  (bench's "observability off" server only)
    MIDDLEWARE.remove("apps.core.middleware.ObservabilityMiddleware")

# --- Scale-out (issue 14): read replica and PgBouncer --------------------------------------
# DATABASE_REPLICA_URL: a streaming replica for reads that may lag (the sale list, the admin's
# figures; apps/core/db_router.py). Inventory, orders and money stay on the primary.
DATABASE_ROUTERS = ["apps.core.db_router.PrimaryReplicaRouter"]
if env("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = {
        **DATABASES["default"],
        **env.db("DATABASE_REPLICA_URL"),
        "OPTIONS": dict(DATABASES["default"]["OPTIONS"]),
        "TEST": {"MIRROR": "default"},
    }
# DATABASE_POOLER=pgbouncer: the URLs point at PgBouncer in transaction mode, so a session's
# state does not outlive a transaction: no server-side cursors, no prepared statements
# (PgBouncer 1.18 cannot route them), no psycopg pool of our own (PgBouncer is the pool).
DATABASE_POOLER = env("DATABASE_POOLER", default="")
if DATABASE_POOLER == "pgbouncer":
    for _alias in [a for a in ("default", "replica") if a in DATABASES]:
        DATABASES[_alias]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES[_alias]["OPTIONS"]["prepare_threshold"] = None
        DATABASES[_alias]["OPTIONS"].pop("pool", None)
# --- end scale-out ---
