"""``/ws/ops/sales/{id}/``: a staff member's console receives the sale's figures each second."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.sales.models import FlashSale

from .selectors import sale_figures

PUSH_SECONDS = 1.0
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def _figures(sale_id: str) -> dict | None:
    sale = FlashSale.objects.filter(id=sale_id).first()
    return sale_figures(sale=sale).as_dict() if sale else None


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    pusher: asyncio.Task | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not (user.is_active and user.is_staff):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.sale_id = str(self.scope["url_route"]["kwargs"]["sale_id"])
        try:
            uuid.UUID(self.sale_id)
        except ValueError:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        self.pusher = asyncio.create_task(self._push())

    async def _push(self):
        read = database_sync_to_async(_figures)
        while True:
            figures = await read(self.sale_id)
            if figures is None:
                await self.close(code=CLOSE_NOT_FOUND)
                return
            await self.send_json({"type": "figures", "figures": figures})
            await asyncio.sleep(PUSH_SECONDS)

    async def disconnect(self, code):
        if self.pusher is not None:
            self.pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.pusher
