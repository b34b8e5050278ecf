#!/usr/bin/env python3
"""Say which of PostgreSQL, Redis and RabbitMQ is not reachable, and how to start it."""

import os
import socket
import sys
from urllib.parse import urlparse

SERVICES = [
    (
        "PostgreSQL",
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/flashsale",
        5432,
        "docker compose up -d postgres   (or: apt-get install postgresql; "
        "pg_ctlcluster 15 main start)",
    ),
    (
        "Redis",
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        6379,
        "docker compose up -d redis   (or: apt-get install redis-server; "
        "redis-server --daemonize yes)",
    ),
    (
        "RabbitMQ",
        "CELERY_BROKER_URL",
        "amqp://guest:guest@127.0.0.1:5672//",
        5672,
        "docker compose up -d rabbitmq   (or: apt-get install rabbitmq-server; "
        "rabbitmq-server -detached)",
    ),
]


def main() -> int:
    missing = 0
    for name, var, default, port, how in SERVICES:
        url = urlparse(os.environ.get(var, default))
        host, port = url.hostname or "127.0.0.1", url.port or port
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError as exc:
            missing += 1
            print(
                f"✗ {name} is not reachable at {host}:{port} ({exc.strerror or exc}).\n"
                f"  Start it with: {how}\n  or point {var} at a running one.",
                file=sys.stderr,
            )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
