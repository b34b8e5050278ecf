"""``/ws/sales/{id}/``: the sale's live state for everyone watching it, and, to the shopper
on this connection only, their admission once their rank is reached."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core import metrics
from apps.core.errors import ApplicationError
from apps.core.redis import RedisError
from apps.core.tokens import AUDIENCE_SHOPPER, TokenInvalid, token_decode
from apps.sales.selectors import sale_snapshot

from .selectors import room_now_serving
from .services import sale_group, waiting_room_position

CLOSE_NOT_FOUND = 4404
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
RECHECK_SECONDS = 5.0


class SaleConsumer(AsyncJsonWebsocketConsumer):
    sale = None
    group = None
    user_id: int | None = None
    rank: int | None = None
    admitted = False
    recheck_at = 0.0  # a shopper not (yet) in the queue is looked up again after this

    async def connect(self):
        sale_id = str(self.scope["url_route"]["kwargs"]["sale_id"])
        try:
            uuid.UUID(sale_id)
        except ValueError:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.sale = await database_sync_to_async(sale_snapshot)(sale_id)
        if self.sale is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            self.user_id = self._shopper_id(query)
        except TokenInvalid:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        asked_for = (query.get("user_id") or [None])[0]
        if asked_for is not None and asked_for != str(self.user_id):
            # Admissions go only to the shopper this connection authenticated as.
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = sale_group(sale_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.counted = True
        metrics.websocket_connections.labels("sale").inc()
        try:
            state = await sync_to_async(room_now_serving)(self.sale)
            await self.send_json(
                {"type": "sale", "sale_id": sale_id, "phase": state["status"], **state}
            )
        except RedisError:
            pass
        if self.user_id is not None:
            await self._follow_queue(None)

    def _shopper_id(self, query) -> int | None:
        user = self.scope.get("user")
        if user is not None and getattr(user, "is_authenticated", False):
            return int(user.pk)
        token = (query.get("token") or [None])[0]
        if not token:
            return None
        claims = token_decode(token, audience=AUDIENCE_SHOPPER)
        try:
            return int(claims["sub"])
        except (KeyError, ValueError):
            raise TokenInvalid("no subject") from None

    async def disconnect(self, code):
        if getattr(self, "counted", False):
            metrics.websocket_connections.labels("sale").dec()
            self.counted = False
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        asked_for = content.get("user_id")
        if content.get("type") == "subscribe" or asked_for is not None:
            if asked_for is not None and str(asked_for) != str(self.user_id):
                await self.send_json(
                    {
                        "type": "error",
                        "error": "forbidden",
                        "detail": "You can only follow your own admission.",
                    }
                )
                await self.close(code=CLOSE_FORBIDDEN)
                return
            if self.user_id is not None:
                await self._follow_queue(None)

    async def sale_update(self, event):
        message = event["sale"]
        await self.send_json(message)
        if self.user_id is None or self.admitted:
            return
        serving = message.get("now_serving")
        # Ask Redis about this shopper only when the public counter reached their rank.
        if self.rank is None:
            if time.monotonic() >= self.recheck_at:
                await self._follow_queue(message)
        elif serving is not None and serving >= self.rank:
            await self._follow_queue(message)

    async def _follow_queue(self, message):
        try:
            place = await sync_to_async(waiting_room_position)(
                sale=self.sale, user_id=self.user_id, claim=True
            )
        except (ApplicationError, RedisError):
            self.rank = None
            self.recheck_at = time.monotonic() + RECHECK_SECONDS
            return
        self.rank = place["rank"]
        if place["status"] == "ready" and "admission_token" in place:
            self.admitted = True
            await self.send_json(
                {
                    "type": "admission",
                    "admission_token": place["admission_token"],
                    "expires_at": place["admission_expires_at"],
                }
            )
        else:
            await self.send_json({"type": "queue", **place})
