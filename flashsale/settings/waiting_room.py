"""The waiting room: the releaser's tick and the live sale messages."""

from .env import env

# The releaser (manage.py run_releaser) ticks every open room this often; a tick credits at
# most WAITING_ROOM_LONGEST_GAP_MS of release after a pause, so a restart causes no burst.
WAITING_ROOM_TICK_SECONDS = env.float("WAITING_ROOM_TICK_SECONDS", default=0.1)
WAITING_ROOM_LONGEST_GAP_MS = env.int("WAITING_ROOM_LONGEST_GAP_MS", default=1000)
# Live sale messages: at most one per this interval per sale when the stock moved (the live
# counter), one per WAITING_ROOM_QUEUE_BROADCAST_SECONDS when only the queue's figures did (a
# page computes its position from now_serving and its rank: once a second is plenty); a phase
# change goes at once, and an unchanged state is repeated this often as a heartbeat.
WAITING_ROOM_BROADCAST_SECONDS = env.float("WAITING_ROOM_BROADCAST_SECONDS", default=0.25)
WAITING_ROOM_QUEUE_BROADCAST_SECONDS = env.float(
    "WAITING_ROOM_QUEUE_BROADCAST_SECONDS", default=1.0
)
WAITING_ROOM_HEARTBEAT_SECONDS = env.int("WAITING_ROOM_HEARTBEAT_SECONDS", default=5)
# The ws process writes a broadcast's frame, built once, straight to each socket of uvicorn's
# websockets-sansio protocol (apps/waiting_room/frames.py); off: every message through the
# ASGI send.
WS_DIRECT_FRAMES = env.bool("WS_DIRECT_FRAMES", default=True)
