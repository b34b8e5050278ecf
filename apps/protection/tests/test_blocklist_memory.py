import pytest

from apps.core.memory import memories_reset
from apps.protection import blocklist

pytestmark = pytest.mark.django_db(transaction=True)


def test_block_list_copy_answers_without_redis_and_follows_changes(settings, shopper, redis_client):
    settings.BLOCKLIST_MEMORY_SECONDS = 60
    memories_reset()  # nothing remembered yet
    assert blocklist.is_blocked(user_id=shopper.id, ip="10.0.0.1") is None
    blocklist.shoppers_block(user_ids=[shopper.id])  # this process forgets its copy
    assert blocklist.is_blocked(user_id=shopper.id, ip=None) == "user"
    # Within the window the copy answers even if Redis changed behind its back...
    redis_client.srem(blocklist.USERS, str(shopper.id))
    assert blocklist.is_blocked(user_id=shopper.id, ip=None) == "user"
    # ...and a clear made through the service is seen at once.
    blocklist.shoppers_clear(user_ids=[shopper.id])
    assert blocklist.is_blocked(user_id=shopper.id, ip=None) is None
