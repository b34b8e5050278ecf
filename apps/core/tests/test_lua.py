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
