"""The process's Redis client and key naming.

Every key carries the configured prefix; every key of one sale carries the hash tag
``{sale:<id>}`` so a sale's Lua scripts run on one Redis Cluster slot.

``REDIS_CLUSTER_NODES`` (``host:port,…``, any seed nodes) switches the client to redis-py's
``RedisCluster``: reservations, the waiting room, admissions, rate limits (through the cache),
the payment circuit breaker, idempotency records and the cache all run on the cluster. What
cannot (the Channels layer's pub/sub) keeps using ``REDIS_URL``; see docs/regions.md.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import redis
from django.conf import settings
from django_redis.pool import ConnectionFactory
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException
from redis.retry import Retry


def cluster_nodes() -> list[ClusterNode]:
    """The configured seed nodes, or [] for a single Redis."""
    nodes = []
    for address in getattr(settings, "REDIS_CLUSTER_NODES", None) or []:
        host, _, port = address.strip().rpartition(":")
        nodes.append(ClusterNode(host or "127.0.0.1", int(port)))
    return nodes


class ClusterUnavailable(redis.ConnectionError):
    """The cluster client could not use the topology (slots uncovered or moving mid-failover).
    redis-py raises RedisClusterException, which is no RedisError; callers that fail closed on
    RedisError see this instead."""


class _Pipeline(ClusterPipeline):
    def execute(self, raise_on_error: bool = True):
        try:
            return super().execute(raise_on_error=raise_on_error)
        except RedisClusterException as exc:
            raise ClusterUnavailable(str(exc)) from exc


class _RedisCluster(RedisCluster):
    def execute_command(self, *args, **kwargs):
        try:
            return super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            raise ClusterUnavailable(str(exc)) from exc

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        pipe.__class__ = _Pipeline
        return pipe


def _cluster(nodes: list[ClusterNode]) -> RedisCluster:
    try:
        return _RedisCluster(
            startup_nodes=nodes,
            socket_connect_timeout=1,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            # A failover moves slots: a few quick retries (each re-reads the slot map) ride out
            # a MOVED or a dead primary's connection error before the caller sees the error.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
            max_connections=256,
            health_check_interval=30,
        )
    except RedisClusterException as exc:
        raise ClusterUnavailable(str(exc)) from exc


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis | RedisCluster:
    nodes = cluster_nodes()
    if nodes:
        return _cluster(nodes)
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=1,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        health_check_interval=30,
        max_connections=256,
    )


class _ThreadConnections(threading.local):
    """This thread's own connections, one per client pool (a test may swap the client)."""

    def __init__(self):
        self.by_pool: dict = {}
        self.pid = os.getpid()


_thread = _ThreadConnections()
_THREAD_POOLS_MAX = 4


def _thread_connection(client: redis.Redis) -> redis.Connection:
    """This thread's connection to ``client``'s server, made with the pool's own settings
    (address, timeouts, protocol) but never returned to it: no pool lock, no readiness poll
    and no health check per call. A forked child makes its own."""
    if _thread.pid != os.getpid():
        _thread.by_pool, _thread.pid = {}, os.getpid()  # the parent's sockets stay the parent's
    pool = client.connection_pool
    connection = _thread.by_pool.get(pool)
    if connection is None:
        if len(_thread.by_pool) >= _THREAD_POOLS_MAX:
            for stale in _thread.by_pool.values():
                stale.disconnect()
            _thread.by_pool.clear()
        connection = _thread.by_pool[pool] = pool.connection_class(**pool.connection_kwargs)
    return connection


def _round_trip(connection: redis.Connection, packed) -> object:
    connection.send_packed_command(packed, check_health=False)
    return connection.read_response()


def _thread_round_trip(client: redis.Redis, *command) -> object:
    connection = _thread_connection(client)
    packed = connection.pack_command(*command)
    try:
        return _round_trip(connection, packed)
    except redis.ConnectionError:  # went stale while idle: once more on a fresh connection
        connection.disconnect()
        return _round_trip(connection, packed)


def _thin(client) -> bool:
    return type(client) is redis.Redis and client.connection_pool.cache is None


def command_run(client, *command) -> object:
    """One command of the hot path (the reply as Redis sends it, no response callback): on a
    plain client, packed once and sent on this thread's own connection (the pool's lock,
    readiness poll, retry wrapper and bookkeeping cost as much Python as the round trip
    itself); anything else (a cluster) through redis-py. A connection error is retried once
    on a fresh connection, as redis-py's own retry would; errors are redis-py's."""
    if _thin(client):
        return _thread_round_trip(client, *command)
    return client.execute_command(*command)


def script_run(client, script, keys, args) -> object:
    """EVALSHA of ``script`` (a redis-py Script) the hot path's way (``command_run``); a
    pipeline or a cluster goes through redis-py. NOSCRIPT loads the script and retries."""
    if not _thin(client):
        return script.run_through(client, keys, args)
    try:
        return _thread_round_trip(client, "EVALSHA", script.sha, len(keys), *keys, *args)
    except NoScriptError:
        client.script_load(script.script)
        return _thread_round_trip(client, "EVALSHA", script.sha, len(keys), *keys, *args)


def script_pipeline(slot_key: str):
    """A non-transactional pipeline that may carry Lua scripts, for keys sharing
    ``slot_key``'s slot. redis-py's cluster pipeline refuses EVALSHA, so on a cluster this is
    a pipeline on the master that owns the slot (a MOVED mid-failover surfaces as a
    RedisError, like any other Redis failure)."""
    client = get_redis()
    if isinstance(client, RedisCluster):
        try:
            node = client.get_node_from_key(slot_key)
        except RedisClusterException as exc:
            raise ClusterUnavailable(str(exc)) from exc
        return client.get_redis_connection(node).pipeline(transaction=False)
    return client.pipeline(transaction=False)


class ClusterConnectionFactory(ConnectionFactory):
    """django-redis's connection factory for REDIS_CLUSTER_NODES: the cache (and the rate
    limits kept in it) share the process's RedisCluster client instead of one URL's pool."""

    def connect(self, url: str):
        return get_redis()

    def disconnect(self, connection) -> None:
        """The shared client outlives one cache handle."""


def key(*parts: object) -> str:
    return settings.REDIS_KEY_PREFIX + ":".join(str(p) for p in parts)


def sale_key(sale_id: object, *parts: object) -> str:
    return _sale_key(settings.REDIS_KEY_PREFIX, sale_id, parts)


@lru_cache(maxsize=4096)
def _sale_key(prefix: str, sale_id: object, parts: tuple) -> str:
    """A sale's key names are few and asked on every request (a waiting-room script takes
    fourteen): each is built once."""
    return prefix + ":".join([f"{{sale:{sale_id}}}", *map(str, parts)])


RedisError = redis.RedisError
