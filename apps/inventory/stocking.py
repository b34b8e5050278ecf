"""Inventory follows the sales: what sales announces (``apps/sales/stock.py``), inventory
does to its unit rows and Redis pool. Connected in ``InventoryConfig.ready``."""

from __future__ import annotations

from .services import inventory_rebuild, inventory_stock, inventory_units_add


def units_stock_on_sale_change(
    sender, *, sale_id: object, total_inventory: int, units_added: list[int], **_
) -> None:
    """In the sale's transaction: exactly ``total_inventory`` unit rows (held ones stay), and
    the units a live sale gained go into its pool once committed."""
    inventory_stock(sale_id=sale_id, total_inventory=total_inventory)
    if units_added:
        inventory_units_add(sale_id=sale_id, numbers=units_added)


def pool_rebuild_on_sale_published(sender, *, sale_id: object, **_) -> None:
    """Pre-warm: rebuild the sale's Redis pool from PostgreSQL (RedisError reaches sales)."""
    inventory_rebuild(sale_id=sale_id)
