"""HTTP client of the simulated gateway service (apps/payments/gateway_service)."""

from __future__ import annotations

from decimal import Decimal

import httpx

from apps.core import tracing
from apps.core.outgoing import outgoing_headers_add

from .base import (
    CardRefused,
    CardToken,
    ChargePage,
    ChargeRecord,
    ChargeResult,
    GatewayError,
    GatewayRejected,
    PaymentGateway,
    RefundResult,
)


def _record(body: dict) -> ChargeRecord:
    return ChargeRecord(
        charge_id=body["id"],
        idempotency_key=body["idempotency_key"],
        status=body["status"],
        amount=Decimal(body["amount"]),
        refunded=bool(body.get("refunded")),
        metadata=body.get("metadata") or {},
        created_at=body.get("created_at") or "",
        disputed=bool(body.get("disputed")),
    )


class SimulatedGateway(PaymentGateway):
    def __init__(self, *, name: str, url: str, timeout: float = 5.0, connect_timeout: float = 1.0):
        self.name = name
        self.url = url.rstrip("/")
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._client = httpx.Client(
            timeout=self.timeout, event_hooks={"request": [outgoing_headers_add]}
        )

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            with tracing.span(
                f"gateway {method}",
                kind=tracing.SpanKind.CLIENT,
                gateway=self.name,
                url_path=path.split("?")[0],
            ):
                response = self._client.request(method, self.url + path, **kwargs)
        except httpx.TimeoutException as exc:
            raise GatewayError(f"{self.name}: timed out ({exc})", kind="timeout") from None
        except httpx.HTTPError as exc:
            raise GatewayError(f"{self.name}: unreachable ({exc})") from None
        if response.status_code >= 500 or response.status_code in (409, 429):
            raise GatewayError(
                f"{self.name}: HTTP {response.status_code} {response.text[:120]}",
                kind="timeout" if response.status_code == 504 else "error",
                http_status=response.status_code,
            )
        return response

    def tokenize(self, *, number, exp_month=None, exp_year=None, cvc="", name="") -> CardToken:
        card = {"number": number, "exp_month": exp_month, "exp_year": exp_year, "name": name}
        if cvc:
            card["cvc"] = cvc
        response = self._call("POST", "/v1/tokens", json={"card": card})
        if response.status_code == 402:
            raise CardRefused(str(response.json().get("code") or "card_declined"))
        if response.status_code != 200:
            raise GatewayRejected(
                f"{self.name}: tokens HTTP {response.status_code} {response.text[:120]}",
                http_status=response.status_code,
            )
        body = response.json()
        return CardToken(token=body["id"], brand=body["brand"], last4=body["last4"])

    def charge(self, *, amount, currency, idempotency_key, source, metadata=None) -> ChargeResult:
        response = self._call(
            "POST",
            "/v1/charges",
            json={
                "amount": str(amount),
                "currency": currency,
                "idempotency_key": idempotency_key,
                "source": source,
                "metadata": metadata or {},
            },
        )
        if response.status_code not in (200, 402):
            raise GatewayRejected(
                f"{self.name}: HTTP {response.status_code} {response.text[:120]}",
                http_status=response.status_code,
            )
        body = response.json()
        return ChargeResult(
            status=body["status"],
            charge_id=body["id"],
            decline_code=body.get("decline_code") or "",
            http_status=response.status_code,
        )

    def refund(self, *, idempotency_key, charge_id="", charge_idempotency_key="") -> RefundResult:
        payload = {"idempotency_key": idempotency_key}
        if charge_id:
            payload["charge_id"] = charge_id
        else:
            payload["charge_idempotency_key"] = charge_idempotency_key
        response = self._call("POST", "/v1/refunds", json=payload)
        if response.status_code != 200:
            raise GatewayRejected(
                f"{self.name}: refund HTTP {response.status_code} {response.text[:120]}",
                http_status=response.status_code,
            )
        body = response.json()
        return RefundResult(refund_id=body["id"], charge_id=body["charge_id"])

    def lookup(self, *, idempotency_key) -> ChargeRecord | None:
        response = self._call("GET", "/v1/charges", params={"idempotency_key": idempotency_key})
        if response.status_code == 404:
            return None
        return _record(response.json())

    def lookup_many(self, *, idempotency_keys) -> dict[str, ChargeRecord | None]:
        response = self._call(
            "POST", "/v1/charges/lookup", json={"idempotency_keys": list(idempotency_keys)}
        )
        charges = response.json()["charges"]
        return {k: (_record(v) if v else None) for k, v in charges.items()}

    def charges_succeeded(self, *, since=None) -> list[ChargeRecord]:
        params = {"status": "succeeded", "refunded": "false", "limit": "5000"}
        if since:
            params["since"] = since
        response = self._call("GET", "/v1/charges", params=params)
        return [_record(c) for c in response.json()["charges"]]

    def charges_changed(self, *, since, cursor="", limit=500) -> ChargePage:
        params = {"changed_since": since, "limit": str(limit)}
        if cursor:
            params["after"] = cursor
        body = self._call("GET", "/v1/charges", params=params).json()
        return ChargePage([_record(c) for c in body["charges"]], body.get("next") or "")
