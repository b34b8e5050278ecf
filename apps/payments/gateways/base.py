"""The payment gateway interface. A real provider plugs in by naming its class in
settings.PAYMENT_GATEWAYS; the shop only sees these types."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class ChargeResult:
    status: str  # "succeeded" | "declined"
    charge_id: str
    decline_code: str = ""
    http_status: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class CardToken:
    """What the gateway gives back for a card: the token we charge later, and what a shop
    may keep (brand, last four digits). The number and CVC stay at the gateway."""

    token: str
    brand: str
    last4: str


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    charge_id: str


@dataclass(frozen=True)
class ChargeRecord:
    """What the gateway's ledger says about a charge (for lookups and reconciliation)."""

    charge_id: str
    idempotency_key: str
    status: str
    amount: Decimal
    refunded: bool
    metadata: dict
    created_at: str = ""
    disputed: bool = False  # the card holder's bank took the money back

    @property
    def kept(self) -> bool:
        """Money the gateway holds for the merchant: taken, not refunded, not disputed."""
        return self.status == "succeeded" and not self.refunded and not self.disputed

    @property
    def merchant_id(self) -> str:
        return str(self.metadata.get("merchant_id") or "")


@dataclass(frozen=True)
class ChargePage:
    charges: list[ChargeRecord]
    next_cursor: str = ""  # "" on the last page


class GatewayError(Exception):
    """The outcome is unknown or the gateway failed: retry with the SAME idempotency key."""

    def __init__(self, message: str, *, kind: str = "error", http_status: int | None = None):
        super().__init__(message)
        self.kind = kind  # "timeout" | "error"
        self.http_status = http_status


class GatewayRejected(Exception):
    """A terminal refusal of the request itself (4xx other than a decline); never retried."""

    def __init__(self, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


class CardRefused(Exception):
    """The gateway refused the card itself at tokenization (bad number, expiry or CVC):
    nothing was charged or kept; the shopper may correct it."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class PaymentGateway(ABC):
    name: str

    @abstractmethod
    def tokenize(
        self,
        *,
        number: str,
        exp_month: int | str | None = None,
        exp_year: int | str | None = None,
        cvc: str = "",
        name: str = "",
    ) -> CardToken:
        """Send the card to the gateway's vault. Raises CardRefused for a card error,
        GatewayError when the gateway cannot answer."""

    @abstractmethod
    def charge(
        self,
        *,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        source: str,
        metadata: dict | None = None,
    ) -> ChargeResult:
        """Charge a token from tokenize() (never a card number)."""

    @abstractmethod
    def refund(
        self,
        *,
        idempotency_key: str,
        charge_id: str = "",
        charge_idempotency_key: str = "",
    ) -> RefundResult: ...

    @abstractmethod
    def lookup(self, *, idempotency_key: str) -> ChargeRecord | None: ...

    def lookup_many(self, *, idempotency_keys: list[str]) -> dict[str, ChargeRecord | None]:
        return {k: self.lookup(idempotency_key=k) for k in idempotency_keys}

    @abstractmethod
    def charges_succeeded(self, *, since: str | None = None) -> list[ChargeRecord]:
        """Successful charges not refunded, oldest first."""

    @abstractmethod
    def charges_changed(self, *, since: str, cursor: str = "", limit: int = 500) -> ChargePage:
        """One page of every charge created, refunded or disputed since ``since``, by
        whoever did it, oldest change first (reconciliation and the payments audit).
        A provider account may be shared: the page holds other merchants' charges too."""

    def charges_changed_all(self, *, since: str, limit: int = 500):
        """Every page of charges_changed, one charge at a time."""
        cursor = ""
        while True:
            page = self.charges_changed(since=since, cursor=cursor, limit=limit)
            yield from page.charges
            if not page.next_cursor:
                return
            cursor = page.next_cursor


@cache
def gateway_get(name: str) -> PaymentGateway:
    config = settings.PAYMENT_GATEWAYS[name]
    return import_string(config["CLASS"])(name=name, **config.get("OPTIONS", {}))


def gateway_names() -> list[str]:
    """Configured gateways, primary first."""
    names = [settings.PAYMENT_PRIMARY_GATEWAY]
    backup = settings.PAYMENT_BACKUP_GATEWAY
    if backup and backup in settings.PAYMENT_GATEWAYS and backup not in names:
        names.append(backup)
    return names
