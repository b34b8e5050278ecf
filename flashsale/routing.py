"""WebSocket routes of every app, gathered in one list."""

from apps.operations.routing import websocket_urlpatterns as operations_ws
from apps.orders.routing import websocket_urlpatterns as orders_ws
from apps.payments.routing import websocket_urlpatterns as payments_ws
from apps.sales.routing import websocket_urlpatterns as sales_ws
from apps.waiting_room.routing import websocket_urlpatterns as waiting_room_ws

websocket_urlpatterns = [*sales_ws, *waiting_room_ws, *orders_ws, *payments_ws, *operations_ws]
