from django.apps import AppConfig

from apps.sales.stock import sale_inventory_changed, sale_published, units_left_set


class InventoryConfig(AppConfig):
    name = "apps.inventory"
    label = "inventory"

    def ready(self) -> None:
        from .services import units_left
        from .stocking import pool_rebuild_on_sale_published, units_stock_on_sale_change

        # Sales announces; inventory stocks the unit rows and pre-warms the pool.
        sale_inventory_changed.connect(
            units_stock_on_sale_change, dispatch_uid="inventory.units_stock"
        )
        sale_published.connect(pool_rebuild_on_sale_published, dispatch_uid="inventory.pool")
        # The sale pages and API show the units left from the pool.
        units_left_set(units_left)
