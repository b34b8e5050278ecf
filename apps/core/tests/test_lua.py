"""Lua scripts are module-level objects bound at call time: a process that switches Redis
(a test's own server, a cluster) runs them on the new server with nothing to clear."""

import uuid

from apps.core.redis import get_redis
from apps.inventory import redis_scripts
from apps.inventory.keys import sale_keys


def test_a_script_runs_on_the_redis_in_use_at_call_time(request):
    keys = sale_keys(uuid.uuid4())
    shared = get_redis()
    shared.set(keys.primed, 1)
    try:
        assert redis_scripts.add_missing(keys, units=[1, 2]) == 2
    finally:
        shared.delete(keys.primed, keys.free)

    private = request.getfixturevalue("private_redis")  # this process now uses another Redis
    private.set(keys.primed, 1)
    assert redis_scripts.add_missing(keys, units=[3]) == 1
    assert private.smembers(keys.free) == {b"3"}
    assert not shared.exists(keys.free)

    private.script_flush()  # as after a restart: NOSCRIPT, then the script is loaded again
    assert redis_scripts.add_missing(keys, units=[4]) == 1
    assert private.smembers(keys.free) == {b"3", b"4"}

    pipe = private.pipeline(transaction=False)  # a client passed in wins
    redis_scripts.ADD_MISSING(
        keys=[keys.free, keys.pending, keys.primed, keys.restock], args=[0, 5], client=pipe
    )
    assert pipe.execute() == [1]


def test_a_script_call_reconnects_when_its_connection_was_closed(redis_client):
    """Hot-path calls use the thread's own connection (apps.core.redis.script_run): one the
    server closed while it sat idle (a restart, a proxy's idle timeout) is replaced, and the
    call answers as if nothing happened."""
    from apps.core.redis import command_run

    keys = sale_keys(uuid.uuid4())
    redis_client.set(keys.primed, 1)
    assert redis_scripts.add_missing(keys, units=[1]) == 1
    own = command_run(redis_client, "CLIENT", "ID")
    assert redis_client.client_kill_filter(_id=own) == 1
    assert redis_scripts.add_missing(keys, units=[2]) == 1
    assert command_run(redis_client, "CLIENT", "ID") != own
    assert redis_client.smembers(keys.free) == {b"1", b"2"}


def test_a_hot_path_call_to_a_redis_that_is_gone_raises_a_redis_error(request):
    """The callers fail closed on RedisError (the purchase's degraded mode, the rate limits'
    local windows): a dead server must surface as one, never as a bare OSError."""
    import pytest
    import redis

    from apps.core.redis import command_run

    private = request.getfixturevalue("private_redis")
    keys = sale_keys(uuid.uuid4())
    private.set(keys.primed, 1)
    assert redis_scripts.add_missing(keys, units=[1]) == 1
    private.shutdown(nosave=True)
    with pytest.raises(redis.RedisError):
        redis_scripts.add_missing(keys, units=[2])
    with pytest.raises(redis.RedisError):
        command_run(get_redis(), "EXISTS", keys.free)
