"""Celery: the broker, this install's queue, and every periodic job (one schedule)."""

from kombu import Queue

from .database import INSTALL_NAME
from .env import env

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
# Every job is safe to run twice, concurrently or after a crash. Seconds between runs.
CELERY_BEAT_SCHEDULE = {
    # Orders and inventory: reservations past their time, Redis holds with no order, the
    # Redis counts against PostgreSQL's.
    "expire-reservations": {"task": "orders.expire_reservations", "schedule": 5.0},
    "sweep-orphan-holds": {"task": "inventory.sweep_orphans", "schedule": 15.0},
    "reconcile-inventory": {"task": "inventory.reconcile_all", "schedule": 120.0},
    # Sales: their status, the events feed, the cache of sales about to start.
    "advance-sale-status": {"task": "sales.advance_status", "schedule": 5.0},
    "notice-sale-events": {"task": "operations.notice_sale_events", "schedule": 5.0},
    "warm-sale-cache": {"task": "sales.cache_warm", "schedule": 30.0},
    # Protection: back from degraded mode, the deactivated-accounts set, the bot flags the
    # join screen queued in Redis.
    "resync-degraded-inventory": {"task": "protection.resync_degraded_inventory", "schedule": 5.0},
    "record-bot-flags": {"task": "protection.record_flags", "schedule": 5.0},
    "restore-inactive-accounts": {"task": "core.inactive_accounts_restore", "schedule": 60.0},
    # Payments: reconciliation with the gateway, the dead letters.
    "reconcile-payments": {"task": "payments.reconcile", "schedule": 60.0},
    "process-payment-dead-letters": {"task": "payments.process_dead_letters", "schedule": 30.0},
}
