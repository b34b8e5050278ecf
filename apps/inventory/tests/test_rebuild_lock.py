"""One rebuild of a sale's Redis pool at a time: a lock not waited for, expiring after
REBUILD_LOCK_SECONDS, released only by its owner."""

import pytest

from apps.inventory.keys import sale_keys
from apps.inventory.services import REBUILD_LOCK_SECONDS, inventory_rebuild
from apps.inventory.signals import inventory_rebuilt

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_rebuild_runs_alone_and_releases_only_its_own_lock(make_sale, redis_client):
    sale = make_sale(inventory=3)
    keys = sale_keys(sale.id)

    redis_client.set(keys.rebuild_lock, "another-process", px=REBUILD_LOCK_SECONDS * 1000)
    assert inventory_rebuild(sale_id=sale.id) is None  # refused at once, not waited for
    assert redis_client.get(keys.rebuild_lock) == b"another-process"

    redis_client.delete(keys.rebuild_lock)
    seen = {}

    def during(sender, sale_id, units_left_now, **kwargs):
        seen["ttl_ms"] = redis_client.pttl(keys.rebuild_lock)
        seen["token"] = redis_client.get(keys.rebuild_lock)

    inventory_rebuilt.connect(during)
    try:
        assert inventory_rebuild(sale_id=sale.id) == 3
    finally:
        inventory_rebuilt.disconnect(during)
    assert 0 < seen["ttl_ms"] <= REBUILD_LOCK_SECONDS * 1000
    assert redis_client.get(keys.primed) == seen["token"]  # the lock's token is the generation
    assert not redis_client.exists(keys.rebuild_lock)  # released

    def taken_over(sender, sale_id, units_left_now, **kwargs):
        # As if the lock had expired mid-rebuild and another process had taken it.
        redis_client.set(keys.rebuild_lock, "next-process", px=REBUILD_LOCK_SECONDS * 1000)

    inventory_rebuilt.connect(taken_over)
    try:
        assert inventory_rebuild(sale_id=sale.id) == 3
    finally:
        inventory_rebuilt.disconnect(taken_over)
    assert redis_client.get(keys.rebuild_lock) == b"next-process"  # not ours to release
