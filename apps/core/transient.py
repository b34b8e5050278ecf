"""Errors that mean "try again shortly": the database refused or dropped a connection ("too
many clients", a restart, a failover), the broker or Redis is unreachable. Tasks retry on
these with Celery's backoff (autoretry_for); terminal errors (bad data, a refusal) are
never in this list."""

from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    BrokerOperationalError,
    RedisConnectionError,
    RedisTimeoutError,
)
