"""The simulated gateway's operations, as a real provider answers them: tokens, charges with
idempotency keys, refunds, disputes and the ledger's listings. Each returns (HTTP status, JSON
body); the HTTP routes are in app.py.

Idempotency works like a real provider's: a key's outcome (success or decline) is stored and
replayed; a request whose key is being processed elsewhere gets 409; a request that dies
half way (timeout, crash) leaves nothing behind because the charge commits in one
transaction, under a per-key advisory lock.

Tokens: the shop sends the card here once and keeps only the token, the brand and the last
four digits. Tokenizing checks what a processor checks before any charge (cards.py); a card
error is a 402 with a code. The CVC is never stored. A token whose card expired by the time
it is charged is declined (expired_card).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from .cards import (
    CARD_ALWAYS_5XX,
    CARD_DECLINED,
    CARD_INCORRECT_CVC,
    CARD_SLOW,
    CARD_TIMEOUT_TWICE,
    card_check,
    luhn_ok,
)
from .ledger import Ledger
from .options import GatewayOptions


def _charge_json(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {
        "id": row["id"],
        "idempotency_key": row["idempotency_key"],
        "amount": str(row["amount"]),
        "currency": row["currency"],
        "card_last4": row["card_last4"],
        "status": row["status"],
        "decline_code": row["decline_code"],
        "refunded": row["refunded"],
        "disputed": row["disputed"],
        "metadata": row["metadata"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


class Gateway:
    def __init__(self, ledger: Ledger, opts: GatewayOptions):
        self.ledger = ledger
        self.opts = opts

    # --- tokens --------------------------------------------------------------------------
    def tokenize(self, body: dict) -> tuple[int, dict]:
        card = body.get("card")
        if not isinstance(card, dict):
            return 400, {"error": "invalid_request", "detail": "card"}
        code, fields = card_check(card, date.today())
        if code:
            return 402, {"error": "card_error", "code": code}
        with self.ledger.pool.connection() as conn:
            row = conn.execute(
                f"INSERT INTO {self.ledger.tokens} (id, number, brand, exp_month, exp_year) "
                "VALUES (%s,%s,%s,%s,%s) RETURNING *",
                [
                    "tok_" + uuid.uuid4().hex[:24],
                    fields["number"],
                    fields["brand"],
                    fields["exp_month"],
                    fields["exp_year"],
                ],
            ).fetchone()
        return 200, {
            "id": row["id"],
            "brand": row["brand"],
            "last4": row["number"][-4:],
            "exp_month": row["exp_month"],
            "exp_year": row["exp_year"],
        }

    def _card_of(self, body: dict) -> tuple[str, str | None] | None:
        """(card number, expired code or None) for a charge's source token, or its raw card."""
        source = str(body.get("source") or "")
        if not source:
            return str(body.get("card") or "").replace(" ", ""), None
        with self.ledger.pool.connection() as conn:
            row = conn.execute(
                f"SELECT * FROM {self.ledger.tokens} WHERE id = %s", [source]
            ).fetchone()
        if row is None:
            return None
        today = date.today()
        expired = row["exp_year"] is not None and (row["exp_year"], row["exp_month"]) < (
            today.year,
            today.month,
        )
        return row["number"], "expired_card" if expired else None

    # --- charges -------------------------------------------------------------------------
    def charge(self, body: dict, attempt: int) -> tuple[int, dict]:
        key = str(body.get("idempotency_key") or "")
        source = self._card_of(body)
        if source is None:
            return 400, {"error": "invalid_source", "detail": "no such token"}
        card, expired = source
        try:
            amount = Decimal(str(body.get("amount")))
        except (InvalidOperation, ValueError):
            return 400, {"error": "invalid_amount"}
        if not key or amount < 0:
            return 400, {"error": "invalid_request", "detail": "idempotency_key and amount"}
        currency = str(body.get("currency") or "USD")[:3]
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}

        if card == CARD_TIMEOUT_TWICE and attempt <= 2:
            time.sleep(self.opts.hang_seconds)  # the client has given up long before
            return 504, {"error": "timeout"}
        if card == CARD_ALWAYS_5XX:
            return 500, {"error": "processor_error"}

        with self.ledger.pool.connection() as conn, conn.transaction():
            got = conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext(%s), hashtext(%s)) AS got",
                [self.ledger.name, key],
            ).fetchone()["got"]
            if not got:
                return 409, {"error": "idempotency_key_in_progress"}
            row = conn.execute(
                f"SELECT * FROM {self.ledger.charges} WHERE idempotency_key = %s", [key]
            ).fetchone()
            if row is not None:
                if row["amount"] != amount:
                    return 422, {"error": "idempotency_key_reused"}
                return _replay(row)
            if card == CARD_SLOW:
                time.sleep(self.opts.slow_seconds)
            if not luhn_ok(card):
                status, code = "declined", "incorrect_number"
            elif expired or card in (CARD_DECLINED, CARD_INCORRECT_CVC):
                status = "declined"
                code = expired or (
                    "incorrect_cvc" if card == CARD_INCORRECT_CVC else "card_declined"
                )
            else:
                status, code = "succeeded", None
            row = conn.execute(
                f"INSERT INTO {self.ledger.charges} (id, idempotency_key, amount, currency, "
                "card_last4, status, decline_code, metadata) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) "
                "RETURNING *",
                [
                    "ch_" + uuid.uuid4().hex[:24],
                    key,
                    amount,
                    currency,
                    card[-4:],
                    status,
                    code,
                    json.dumps(metadata),
                ],
            ).fetchone()
        return _replay(row)

    def lookup(self, key: str) -> tuple[int, dict]:
        with self.ledger.pool.connection() as conn:
            row = conn.execute(
                f"SELECT * FROM {self.ledger.charges} WHERE idempotency_key = %s", [key]
            ).fetchone()
        if row is None:
            return 404, {"error": "no_such_charge"}
        return 200, _charge_json(row)

    def lookup_many(self, keys: list) -> tuple[int, dict]:
        keys = [str(k) for k in keys][:10000]
        with self.ledger.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT * FROM {self.ledger.charges} WHERE idempotency_key = ANY(%s)", [keys]
            ).fetchall()
        found = {row["idempotency_key"]: _charge_json(row) for row in rows}
        return 200, {"charges": {k: found.get(k) for k in keys}}

    def list_charges(
        self, status: str, since: str | None, limit: int, unrefunded: bool = False
    ) -> tuple[int, dict]:
        since_dt = datetime.fromisoformat(since) if since else datetime(1970, 1, 1)
        with self.ledger.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT * FROM {self.ledger.charges} WHERE status = %s AND created_at >= %s "
                + ("AND NOT refunded " if unrefunded else "")
                + "ORDER BY created_at, id LIMIT %s",
                [status, since_dt, min(limit, 5000)],
            ).fetchall()
        return 200, {"charges": [_charge_json(r) for r in rows]}

    def list_changes(self, changed_since: str | None, after: str, limit: int) -> tuple[int, dict]:
        """Keyset pages over (updated_at, id): a refund or dispute moves a charge to the end."""
        since_dt = datetime.fromisoformat(changed_since) if changed_since else datetime(1970, 1, 1)
        limit = max(1, min(limit, 5000))
        if after:
            stamp, _, charge_id = after.partition("|")
            where, args = "(updated_at, id) > (%s, %s)", [datetime.fromisoformat(stamp), charge_id]
        else:
            where, args = "updated_at >= %s", [since_dt]
        with self.ledger.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT * FROM {self.ledger.charges} WHERE {where} "
                "ORDER BY updated_at, id LIMIT %s",
                [*args, limit],
            ).fetchall()
        following = None
        if len(rows) == limit:
            following = f"{rows[-1]['updated_at'].isoformat()}|{rows[-1]['id']}"
        return 200, {"charges": [_charge_json(r) for r in rows], "next": following}

    def dispute(self, body: dict) -> tuple[int, dict]:
        with self.ledger.pool.connection() as conn:
            row = conn.execute(
                f"UPDATE {self.ledger.charges} SET disputed = true, updated_at = clock_timestamp() "
                "WHERE id = %s AND status = 'succeeded' RETURNING *",
                [str(body.get("charge_id") or "")],
            ).fetchone()
        if row is None:
            return 404, {"error": "no_such_charge"}
        return 200, _charge_json(row)

    # --- refunds -------------------------------------------------------------------------
    def refund(self, body: dict) -> tuple[int, dict]:
        key = str(body.get("idempotency_key") or "")
        charge_id = body.get("charge_id")
        charge_key = body.get("charge_idempotency_key")
        if not key or not (charge_id or charge_key):
            return 400, {"error": "invalid_request"}
        with self.ledger.pool.connection() as conn, conn.transaction():
            done = conn.execute(
                f"SELECT * FROM {self.ledger.refunds} WHERE idempotency_key = %s", [key]
            ).fetchone()
            if done is not None:
                return 200, _refund_json(done)
            where, arg = ("id", charge_id) if charge_id else ("idempotency_key", charge_key)
            charge = conn.execute(
                f"SELECT * FROM {self.ledger.charges} WHERE {where} = %s FOR UPDATE", [arg]
            ).fetchone()
            if charge is None or charge["status"] != "succeeded":
                return 404, {"error": "no_such_charge"}
            if charge["refunded"]:
                prior = conn.execute(
                    f"SELECT * FROM {self.ledger.refunds} WHERE charge_id = %s", [charge["id"]]
                ).fetchone()
                return 200, _refund_json(prior)
            conn.execute(
                f"UPDATE {self.ledger.charges} SET refunded = true, updated_at = clock_timestamp() "
                "WHERE id = %s",
                [charge["id"]],
            )
            row = conn.execute(
                f"INSERT INTO {self.ledger.refunds} (id, idempotency_key, charge_id, amount) "
                "VALUES (%s,%s,%s,%s) RETURNING *",
                ["re_" + uuid.uuid4().hex[:24], key, charge["id"], charge["amount"]],
            ).fetchone()
        return 200, _refund_json(row)


def _replay(row: dict) -> tuple[int, dict]:
    return (200 if row["status"] == "succeeded" else 402), _charge_json(row)


def _refund_json(row: dict) -> dict:
    return {
        "id": row["id"],
        "idempotency_key": row["idempotency_key"],
        "charge_id": row["charge_id"],
        "amount": str(row["amount"]),
        "status": "succeeded",
    }
