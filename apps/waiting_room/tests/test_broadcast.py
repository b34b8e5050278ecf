"""sale_broadcast sends as often as the page needs: the stock's counter at 4 Hz, the queue's
figures alone once a second, a phase change at once (real Redis, real channel layer)."""

import time
import uuid

from apps.waiting_room.services import sale_broadcast


def _message(sale_id: str, *, serving: int, units_left: int = 10, phase: str = "live") -> dict:
    return {
        "type": "sale",
        "sale_id": sale_id,
        "status": phase,
        "phase": phase,
        "now_serving": serving,
        "units_left": units_left,
        "admission_rate": 5.0,
        "waiting": 1000 - serving,
    }


def _send_for(seconds: float, make) -> list[int]:
    """Offer a changed message every 20 ms for ``seconds``; the indexes that went out."""
    sent, index, deadline = [], 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sale_broadcast(sale_id=make.sale_id, message=make(index)):
            sent.append(index)
        index += 1
        time.sleep(0.02)
    return sent


class _Maker:
    def __init__(self, sale_id, **fixed):
        self.sale_id, self.fixed = sale_id, fixed

    def __call__(self, index):
        return _message(self.sale_id, serving=index, **self.fixed)


def test_queue_figures_alone_go_once_a_second(settings):
    settings.WAITING_ROOM_BROADCAST_SECONDS = 0.25
    settings.WAITING_ROOM_QUEUE_BROADCAST_SECONDS = 1.0
    sale_id = str(uuid.uuid4())
    sent = _send_for(2.5, _Maker(sale_id))
    # the first (a new phase) at once, then one per second: 3, never the 4 Hz of the stock
    assert 2 <= len(sent) <= 4, sent


def test_a_stock_change_is_not_held_back_by_the_queue_gate(settings):
    settings.WAITING_ROOM_BROADCAST_SECONDS = 0.25
    settings.WAITING_ROOM_QUEUE_BROADCAST_SECONDS = 1.0
    sale_id = str(uuid.uuid4())
    assert sale_broadcast(sale_id=sale_id, message=_message(sale_id, serving=1))
    time.sleep(0.3)  # past the 4 Hz gate, inside the queue's 1 s
    assert not sale_broadcast(sale_id=sale_id, message=_message(sale_id, serving=2))
    assert sale_broadcast(sale_id=sale_id, message=_message(sale_id, serving=2, units_left=9))
    # a phase change goes at once, gates or not
    assert sale_broadcast(
        sale_id=sale_id, message=_message(sale_id, serving=2, units_left=0, phase="sold_out")
    )
