"""The checkout page's live feed: the order's events (paid, declined, expired, refunded)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.orders.notifications import order_group

from .selectors import order_body, order_for_shopper


class OrderPaymentConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        self.order_id = str(self.scope["url_route"]["kwargs"]["order_id"])
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        body = await database_sync_to_async(self._order_body)(user.id)
        if body is None:
            await self.close(code=4404)
            return
        await self.channel_layer.group_add(order_group(self.order_id), self.channel_name)
        await self.accept()
        await self.send_json({"type": "order.state", **body})

    def _order_body(self, user_id):
        order = order_for_shopper(order_id=self.order_id, user_id=user_id)
        return order_body(order) if order is not None else None

    async def disconnect(self, code):
        await self.channel_layer.group_discard(order_group(self.order_id), self.channel_name)

    async def order_update(self, event):
        await self.send_json(event)
