"""Redis key names of one sale; all carry the sale's hash tag."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from apps.core.redis import sale_key


@dataclass(frozen=True)
class SaleKeys:
    sale_id: str

    def _k(self, *parts: object) -> str:
        return sale_key(self.sale_id, *parts)

    @property
    def free(self) -> str:
        return self._k("free")

    @property
    def primed(self) -> str:
        return self._k("primed")

    @property
    def buyers(self) -> str:
        return self._k("buyers")

    @property
    def inflight(self) -> str:
        return self._k("inflight")

    @property
    def pending(self) -> str:
        return self._k("pending")

    @property
    def holders(self) -> str:
        """The shoppers who took a hold in this sale (kept as long as their replay records)."""
        return self._k("holders")

    @property
    def holders_ready(self) -> str:
        """Set once ``holders`` is whole again after a rebuild (or at the first prime)."""
        return self._k("holders-ready")

    @property
    def restock(self) -> str:
        """Set, for a moment, when units come back to an empty pool (see reserve.lua)."""
        return self._k("restock")

    @property
    def rebuild_lock(self) -> str:
        return self._k("rebuild-lock")

    @property
    def staged_free(self) -> str:
        return self._k("staged-free")

    @property
    def staged_buyers(self) -> str:
        return self._k("staged-buyers")

    def idempotency(self, user_id: int, idempotency_key: str) -> str:
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
        return self._k("idem", user_id, digest)

    def returned(self, order_id: object) -> str:
        return self._k("returned", order_id)


def sale_keys(sale_id: object) -> SaleKeys:
    return SaleKeys(str(sale_id))
