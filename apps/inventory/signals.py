"""What inventory tells the layers above it, without knowing them."""

from django.dispatch import Signal

# Sent (synchronously) after a sale's Redis pool was rebuilt from PostgreSQL and swapped
# in, with ``sale_id`` and ``units_left_now``: whoever keeps Redis state of the sale that
# the rebuild dropped restores it here (orders: the idempotency records).
inventory_rebuilt = Signal()
