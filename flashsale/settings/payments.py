"""Payments: gateways, our merchant identity, retries, the circuit breaker, the expiry bound."""

import hashlib

from .database import DATABASES
from .env import env

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
    **(
        {
            "backup": {
                "CLASS": env("PAYMENT_BACKUP_GATEWAY_CLASS", default=PAYMENT_GATEWAY_CLASS),
                "OPTIONS": {"url": PAYMENT_BACKUP_GATEWAY_URL, "timeout": PAYMENT_GATEWAY_TIMEOUT},
            }
        }
        if PAYMENT_BACKUP_GATEWAY_URL
        else {}
    ),
}
PAYMENT_PRIMARY_GATEWAY = "primary"
PAYMENT_BACKUP_GATEWAY = "backup" if PAYMENT_BACKUP_GATEWAY_URL else ""


def merchant_id_of(database: dict) -> str:
    """Our identity on the gateway, sent with every charge: reconciliation acts only on charges
    carrying it (a provider account may be shared by several installs or systems). Derived
    from the database's host, port and name, so it is stable per install; set
    PAYMENT_MERCHANT_ID explicitly in production, and to a different value on a staging copy of
    production's database."""
    where = f"{database.get('HOST', '')}:{database.get('PORT', '')}/{database['NAME']}"
    return f"{database['NAME']}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


PAYMENT_MERCHANT_ID = env("PAYMENT_MERCHANT_ID", default=merchant_id_of(DATABASES["default"]))
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
