"""Sales and purchases: what a process remembers, the sale cache, idempotency, orphan holds."""

from .env import env

# Purchases: a process remembers a sold-out sale this long before asking Redis again.
SOLD_OUT_MEMORY_SECONDS = env.float("SOLD_OUT_MEMORY_SECONDS", default=1.0)
SALE_SNAPSHOT_SECONDS = env.float("SALE_SNAPSHOT_SECONDS", default=1.0)
# The list and sale pages: a process renders each at most once this often (apps/sales/pages.py).
PUBLIC_PAGE_SECONDS = env.float("PUBLIC_PAGE_SECONDS", default=1.0)
IDEMPOTENCY_TTL_SECONDS = env.int("IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
# Group commit: a web process records the purchases waiting at the same moment as orders in one
# PostgreSQL transaction, at most this many (apps/orders/services/group_commit.py).
ORDER_GROUP_COMMIT = env.bool("ORDER_GROUP_COMMIT", default=True)
ORDER_GROUP_COMMIT_MAX = env.int("ORDER_GROUP_COMMIT_MAX", default=64)
# Groups committing side by side per process (a purchase waits for a leader only beyond them).
# One: while a group commits, the next one gathers, so a transaction carries ~4 purchases at
# 8 threads instead of ~1.4 with four leaders, and a purchase costs a third less CPU in Python
# and half in PostgreSQL (docs/benchmarks.md, "reserve").
ORDER_GROUP_COMMIT_LEADERS = env.int("ORDER_GROUP_COMMIT_LEADERS", default=1)
# A Redis hold with no PostgreSQL order after this long is an orphan and goes back.
ORPHAN_GRACE_SECONDS = env.int("ORPHAN_GRACE_SECONDS", default=30)

# The Redis copy of a sale is refreshed from PostgreSQL after this long, by one request at a time
# (the others keep serving the copy they have); it is dropped after SALE_CACHE_TTL_SECONDS.
SALE_CACHE_FRESH_SECONDS = env.float("SALE_CACHE_FRESH_SECONDS", default=60.0)
SALE_CACHE_TTL_SECONDS = env.int("SALE_CACHE_TTL_SECONDS", default=24 * 3600)
# How long a request waits for another one to fill a cold cache before asking PostgreSQL itself.
SALE_CACHE_WAIT_SECONDS = env.float("SALE_CACHE_WAIT_SECONDS", default=2.0)
SALE_LIST_CACHE_SECONDS = env.int("SALE_LIST_CACHE_SECONDS", default=5)
# Sales starting within this many seconds are re-published to the cache by the beat task.
SALE_CACHE_WARM_AHEAD_SECONDS = env.int("SALE_CACHE_WARM_AHEAD_SECONDS", default=3600)
