"""PostgreSQL: the primary, its connection pool, a read replica, PgBouncer; the install's name."""

from .env import env

# Connections: a bounded psycopg pool per process (Django 5.2), so a node holds at most
# DB_POOL_MAX_SIZE connections per process whatever its thread count (README, "Connections per
# node"). 16 is what the purchase path needs for PostgreSQL's group commit (docs/benchmarks.md:
# 16 concurrent commits ~1,300/s on this disk); more threads than that wait for a connection at
# most DB_POOL_TIMEOUT, then answer 503 with Retry-After. DB_POOL_MAX_SIZE=0 turns the pool off
# (persistent per-thread connections, CONN_MAX_AGE), e.g. behind PgBouncer in transaction mode.
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=16)
# The longest a request waits for a connection (and a purchase for its group's turn to commit,
# apps/orders/services/group_commit.py) before answering 503 with Retry-After.
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=1.0)
# DATABASE_POOLER=pgbouncer: the URLs point at PgBouncer in transaction mode, so a session's
# state does not outlive a transaction: no server-side cursors, no prepared statements
# (PgBouncer 1.18 cannot route them), no psycopg pool of our own (PgBouncer is the pool).
DATABASE_POOLER = env("DATABASE_POOLER", default="")
# The purchase's one statement is prepared per connection (planned once), except behind
# PgBouncer in transaction mode.
DATABASE_PREPARED_STATEMENTS = DATABASE_POOLER != "pgbouncer"


def _primary() -> dict:
    database = env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/flashsale")
    options = database.setdefault("OPTIONS", {})
    # Fail fast instead of hanging when PostgreSQL is gone.
    options.setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=3))
    if DB_POOL_MAX_SIZE > 0:
        database["CONN_MAX_AGE"] = 0  # Django requires it with a pool
        options["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": DB_POOL_TIMEOUT,
        }
    else:
        database["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # A connection PostgreSQL dropped (restart, failover, pg_terminate_backend) is noticed before
    # a request uses it (with the pool, Django hands psycopg_pool its check_connection).
    database["CONN_HEALTH_CHECKS"] = True
    return database


def _databases() -> dict:
    databases = {"default": _primary()}
    # DATABASE_REPLICA_URL: a streaming replica for reads that may lag (the sale list, the
    # admin's figures; apps/core/db_router.py). Inventory, orders and money stay on the primary.
    if env("DATABASE_REPLICA_URL", default=""):
        databases["replica"] = {
            **databases["default"],
            **env.db("DATABASE_REPLICA_URL"),
            "OPTIONS": dict(databases["default"]["OPTIONS"]),
            "TEST": {"MIRROR": "default"},
        }
    if DATABASE_POOLER == "pgbouncer":
        for database in databases.values():
            database["DISABLE_SERVER_SIDE_CURSORS"] = True
            database["OPTIONS"]["prepare_threshold"] = None
            database["OPTIONS"].pop("pool", None)
    return databases


DATABASES = _databases()
DATABASE_ROUTERS = ["apps.core.db_router.PrimaryReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# This install's name, by default its database's: it names the Celery queue, the Redis key
# prefix and (with host and port) the merchant identity on the payment gateway, so a second
# install on the same PostgreSQL, Redis and RabbitMQ shares none of them.
INSTALL_NAME = env("INSTALL_NAME", default=DATABASES["default"]["NAME"])
