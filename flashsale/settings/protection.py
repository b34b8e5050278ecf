"""Protection: rate limits, the bot screen, load shedding, degraded modes, login throttling."""

from .env import env

# RATELIMIT_ENABLE=0 turns the limits off (load tests run from one address). The sliding
# windows live in the Redis of this cache (apps/protection/ratelimits.py).
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
RATELIMIT_USE_CACHE = "default"
# django-ratelimit (the forms that send email: sign-up, password reset) reads the client address
# the way the protection middleware does, behind TRUSTED_PROXY_COUNT proxies.
RATELIMIT_IP_META_KEY = "apps.protection.services.client_ip"
EMAIL_FORM_RATE_PER_IP = env("EMAIL_FORM_RATE_PER_IP", default="10/h")
EMAIL_FORM_RATE_PER_EMAIL = env("EMAIL_FORM_RATE_PER_EMAIL", default="3/h")


def _rate_limits() -> dict:
    """Per endpoint group: "user" and "ip" rates ("10/s", "20/m", "3/2h"), each a sliding window
    of that length; the first matching rule applies. RATE_LIMITS_JSON (a JSON object) overrides
    rates by group, e.g. '{"challenge": {"ip": "3/m"}}'."""
    rules = {
        "token": {"path": r"^/api/v1/auth/token/?$", "methods": ["POST"], "ip": "20/m"},
        "challenge": {
            "path": r"^/api/v1/flash_sales/[^/]+/challenge/?$",
            "user": "5/s",
            "ip": "60/s",
        },
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
        "purchase": {
            "path": r"^/api/v1/flash_sales/[^/]+/purchase/?$",
            "user": "10/s",
            "ip": "200/s",
        },
        "checkout": {"path": r"^/api/v1/(orders|payments)/", "user": "10/s", "ip": "200/s"},
        "api": {"path": r"^/api/", "user": "10/s", "ip": "300/s"},
    }
    for group, override in env.json("RATE_LIMITS_JSON", default={}).items():
        rules.setdefault(group, {"path": r"^$"}).update(override)
    return rules


RATE_LIMITS = _rate_limits()
# Client address: REMOTE_ADDR, or the n-th address from the right of X-Forwarded-For when
# n trusted proxies (nginx, a load balancer) stand in front.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# A process keeps a copy of the block list this long (0: ask Redis on every request).
BLOCKLIST_MEMORY_SECONDS = env.float("BLOCKLIST_MEMORY_SECONDS", default=1.0)

# Load shedding: purchases in flight per process; past it, 503 at once.
PURCHASE_INFLIGHT_CAP = env.int("PURCHASE_INFLIGHT_CAP", default=64)
# Degraded mode (Redis down): purchases through PostgreSQL's guard, at most this many at once
# per process.
DEGRADED_PURCHASE_CONCURRENCY = env.int("DEGRADED_PURCHASE_CONCURRENCY", default=4)
# Readiness: the dependencies whose loss takes this process out of the load balancer. By
# default none alone does (purchases degrade without Redis; pages render from cache without
# PostgreSQL); the process is unready only when all of them are gone.
READINESS_REQUIRED = env.list("READINESS_REQUIRED", default=[])

# Bots: proof of work and scoring.
POW_CHALLENGE_SECONDS = env.int("POW_CHALLENGE_SECONDS", default=300)
BOT_ACCOUNTS_PER_IP = env.int("BOT_ACCOUNTS_PER_IP", default=5)
BOT_ACCOUNTS_PER_DEVICE = env.int("BOT_ACCOUNTS_PER_DEVICE", default=2)
BOT_MIN_PAGE_SECONDS = env.float("BOT_MIN_PAGE_SECONDS", default=1.0)

# Deactivated or deleted accounts (apps/core/accounts.py): each process re-reads the set's
# version from Redis at most this often, so another process's change reaches it this late.
ACCOUNT_MEMORY_SECONDS = env.float("ACCOUNT_MEMORY_SECONDS", default=2.0)
# Password checks (apps/protection/logins.py, the AUTHENTICATION_BACKENDS in django.py): the
# first attempts per username and per address are free, then each waits twice as long as the
# previous one (from the base delay up to the longest); a record is forgotten this long after
# its last attempt. At most LOGIN_HASH_CONCURRENCY passwords are hashed at once per process; a
# check that cannot start within LOGIN_HASH_WAIT_SECONDS gets a 503 instead of holding a thread.
LOGIN_FREE_ATTEMPTS_PER_USERNAME = env.int("LOGIN_FREE_ATTEMPTS_PER_USERNAME", default=5)
LOGIN_FREE_ATTEMPTS_PER_IP = env.int("LOGIN_FREE_ATTEMPTS_PER_IP", default=20)
LOGIN_DELAY_BASE_SECONDS = env.float("LOGIN_DELAY_BASE_SECONDS", default=1.0)
LOGIN_DELAY_MAX_SECONDS = env.float("LOGIN_DELAY_MAX_SECONDS", default=900.0)
LOGIN_MEMORY_SECONDS = env.int("LOGIN_MEMORY_SECONDS", default=3600)
LOGIN_HASH_CONCURRENCY = env.int("LOGIN_HASH_CONCURRENCY", default=1)
LOGIN_HASH_WAIT_SECONDS = env.float("LOGIN_HASH_WAIT_SECONDS", default=0.5)
