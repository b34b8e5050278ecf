"""Redis key names of one sale's waiting room; all carry the sale's hash tag, so the room's
scripts and the inventory keys they read run on one Redis Cluster slot."""

from __future__ import annotations

from dataclasses import dataclass

from apps.core.redis import sale_key


@dataclass(frozen=True)
class RoomKeys:
    sale_id: str

    def _k(self, name: str) -> str:
        return sale_key(self.sale_id, "wr", name)

    @property
    def state(self) -> str:
        """Counters: sealed, P/BP (pre-start joiners), mpost/bpost, sm/sb (served), active…"""
        return self._k("state")

    @property
    def pre(self) -> str:
        return self._k("pre")

    @property
    def post(self) -> str:
        return self._k("post")

    @property
    def back_pre(self) -> str:
        return self._k("bpre")

    @property
    def back_post(self) -> str:
        return self._k("bpost")

    @property
    def requeued(self) -> str:
        return self._k("rq")

    @property
    def claims(self) -> str:
        return self._k("claims")

    @property
    def live(self) -> str:
        return self._k("live")

    @property
    def main_batches(self) -> str:
        return self._k("mb")

    @property
    def back_batches(self) -> str:
        return self._k("bb")

    @property
    def batch_meta(self) -> str:
        return self._k("bmeta")

    @property
    def batch_deadlines(self) -> str:
        return self._k("bdead")

    @property
    def broadcast_gate(self) -> str:
        return self._k("bcast-gate")

    @property
    def broadcast_queue_gate(self) -> str:
        """Set while a change of the queue's figures alone must wait (sale_broadcast)."""
        return self._k("bcast-qgate")

    @property
    def broadcast_last(self) -> str:
        return self._k("bcast-last")

    def admission_used(self, jti: str) -> str:
        return self._k(f"used:{jti}")


def room_keys(sale_id: object) -> RoomKeys:
    return RoomKeys(str(sale_id))
