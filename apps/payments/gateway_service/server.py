"""The simulated gateway's HTTP server.

Endpoints (JSON):
  POST /v1/tokens           {card: {number, exp_month, exp_year, cvc, name}}
                            200 {id: tok_…, brand, last4, exp_month, exp_year} | 402 card error
  POST /v1/charges          {amount, currency, source: tok_… (or card), idempotency_key, metadata}
                            200 succeeded | 402 declined | 409 same key in progress | 5xx
  POST /v1/refunds          {charge_id | charge_idempotency_key, idempotency_key}
                            (also what a support desk does "directly at the gateway")
  POST /v1/disputes         {charge_id, reason}  the card holder disputes a charge
  GET  /v1/charges?idempotency_key=K          one charge or 404
  POST /v1/charges/lookup   {idempotency_keys: [...]} → {key: charge|null}
  GET  /v1/charges?status=succeeded&since=ISO[&refunded=false]  the ledger by creation
  GET  /v1/charges?changed_since=ISO[&after=CURSOR&limit=N]  every charge created, refunded
                            or disputed since, oldest change first, paged: {charges, next}
  GET  /v1/attempts?idempotency_key=K          requests seen for a key (tests)
  GET  /health

Idempotency works like a real provider's: a key's outcome (success or decline) is stored and
replayed; a request whose key is being processed elsewhere gets 409; a request that dies
half way (timeout, crash) leaves nothing behind because the charge commits in one
transaction, under a per-key advisory lock.

Test cards: 4242424242424242 succeeds; 4000000000000002 is declined; 4000000000009995 hangs
past the client's timeout on its first two attempts for a key, then succeeds;
4000000000000119 answers 500 every time; 4000000000003220 succeeds after --slow-seconds
(20 s by default); 4000000000000127 is declined for an incorrect CVC. Other numbers passing
the Luhn check succeed; others are declined.

Tokens: the shop sends the card here once and keeps only the token, the brand and the last
four digits. Tokenizing checks what a processor checks before any charge: the number (ASCII
digits, Luhn), the expiry (a real month, not past by this gateway's clock, at most 20 years
ahead) and the CVC's format (3 digits, 4 for American Express); a card error is a 402 with a
code. The CVC is never stored. A token whose card expired by the time it is charged is
declined (expired_card).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import sys
import threading
import time
import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

logger = logging.getLogger("gateway")

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_TIMEOUT_TWICE = "4000000000009995"
CARD_ALWAYS_5XX = "4000000000000119"
CARD_SLOW = "4000000000003220"
CARD_INCORRECT_CVC = "4000000000000127"
_ASCII_DIGITS = frozenset("0123456789")


def ascii_digits(value: str) -> bool:
    return bool(value) and set(value) <= _ASCII_DIGITS


def luhn_ok(number: str) -> bool:
    if not ascii_digits(number) or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    if 51 <= int(number[:2] or 0) <= 55 or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return "discover"
    return "unknown"


def _int(value) -> int | None:
    text = str(value if value is not None else "").strip()
    return int(text) if ascii_digits(text) and len(text) <= 4 else None


def card_check(card: dict, today: date) -> tuple[str | None, dict]:
    """(error code or None, the card's normalised fields). Absent expiry or CVC is not
    checked (a card on file); present ones must be right."""
    number = str(card.get("number") or "").replace(" ", "")
    if not luhn_ok(number):
        return "incorrect_number", {}
    fields = {"number": number, "brand": card_brand(number), "exp_month": None, "exp_year": None}
    if card.get("exp_month") is not None or card.get("exp_year") is not None:
        month, year = _int(card.get("exp_month")), _int(card.get("exp_year"))
        if month is None or not 1 <= month <= 12:
            return "invalid_expiry_month", {}
        if year is not None and year < 100:
            year += 2000
        if year is None or year > today.year + 20:
            return "invalid_expiry_year", {}
        if (year, month) < (today.year, today.month):
            return "expired_card", {}
        fields.update(exp_month=month, exp_year=year)
    cvc = card.get("cvc")
    if cvc not in (None, ""):
        cvc = str(cvc)
        if not ascii_digits(cvc) or len(cvc) != (4 if fields["brand"] == "amex" else 3):
            return "invalid_cvc", {}
    return None, fields


class Ledger:
    """Charges, refunds and per-key attempt counts in PostgreSQL tables of this gateway."""

    def __init__(self, dsn: str, name: str, pool_size: int = 10):
        self.name = name
        self.charges = f"gateway_{name}_charges"
        self.refunds = f"gateway_{name}_refunds"
        self.attempts = f"gateway_{name}_attempts"
        self.tokens = f"gateway_{name}_tokens"
        _ensure_database(dsn)
        self.pool = ConnectionPool(
            dsn, min_size=1, max_size=pool_size, open=True, kwargs={"row_factory": dict_row}
        )
        with self.pool.connection() as conn:
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.charges} (
                    id text PRIMARY KEY, idempotency_key text UNIQUE NOT NULL,
                    amount numeric(12,2) NOT NULL, currency text NOT NULL,
                    card_last4 text NOT NULL, status text NOT NULL, decline_code text,
                    metadata jsonb NOT NULL DEFAULT '{{}}', refunded boolean NOT NULL DEFAULT false,
                    created_at timestamptz NOT NULL DEFAULT now())"""
            )
            # Ledgers made before refunds and disputes were listed as changes.
            conn.execute(
                f"ALTER TABLE {self.charges} "
                "ADD COLUMN IF NOT EXISTS disputed boolean NOT NULL DEFAULT false, "
                "ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now()"
            )
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {self.charges}_changes "
                f"ON {self.charges} (updated_at, id)"
            )
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.refunds} (
                    id text PRIMARY KEY, idempotency_key text UNIQUE NOT NULL,
                    charge_id text NOT NULL UNIQUE, amount numeric(12,2) NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now())"""
            )
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.attempts} (
                    idempotency_key text PRIMARY KEY, n integer NOT NULL)"""
            )
            # The gateway's vault: the only place a card number is kept.
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.tokens} (
                    id text PRIMARY KEY, number text NOT NULL, brand text NOT NULL,
                    exp_month integer, exp_year integer,
                    created_at timestamptz NOT NULL DEFAULT now())"""
            )

    def attempts_of(self, key: str) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT n FROM {self.attempts} WHERE idempotency_key = %s", [key]
            ).fetchone()
        return row["n"] if row else 0

    def count_attempt(self, key: str) -> int:
        with self.pool.connection() as conn:
            return conn.execute(
                f"INSERT INTO {self.attempts} VALUES (%s, 1) ON CONFLICT (idempotency_key) "
                f"DO UPDATE SET n = {self.attempts}.n + 1 RETURNING n",
                [key],
            ).fetchone()["n"]


def _ensure_database(dsn: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    dbname = info.get("dbname")
    if not dbname:
        return
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
        return
    except psycopg.OperationalError:
        pass
    admin = psycopg.conninfo.make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        try:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        except psycopg.errors.DuplicateDatabase:
            pass


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
    def __init__(self, ledger: Ledger, opts):
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


def make_handler(gateway: Gateway):
    opts = gateway.opts

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            if opts.verbose:
                logger.info("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, body: dict) -> None:
            raw = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                value = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}

        def _chaos(self) -> bool:
            if opts.latency_ms:
                time.sleep(opts.latency_ms / 1000 * random.uniform(0.5, 1.5))
            if opts.failure_rate and random.random() < opts.failure_rate:
                self._send(503, {"error": "chaos"})
                return True
            return False

        def do_GET(self):
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            try:
                if url.path == "/health":
                    return self._send(200, {"ok": True, "name": gateway.ledger.name})
                if url.path == "/v1/attempts":
                    return self._send(
                        200, {"n": gateway.ledger.attempts_of(query.get("idempotency_key", ""))}
                    )
                if url.path == "/v1/charges" and "idempotency_key" in query:
                    if self._chaos():
                        return None
                    return self._send(*gateway.lookup(query["idempotency_key"]))
                if url.path == "/v1/charges" and ("changed_since" in query or "after" in query):
                    return self._send(
                        *gateway.list_changes(
                            query.get("changed_since"),
                            query.get("after", ""),
                            int(query.get("limit", "1000")),
                        )
                    )
                if url.path == "/v1/charges":
                    return self._send(
                        *gateway.list_charges(
                            query.get("status", "succeeded"),
                            query.get("since"),
                            int(query.get("limit", "1000")),
                            query.get("refunded") == "false",
                        )
                    )
                return self._send(404, {"error": "not_found"})
            except Exception as exc:  # noqa: BLE001 - a gateway answers 500, it does not die
                logger.exception("gateway error")
                return self._send(500, {"error": "internal", "detail": str(exc)[:200]})

        def do_POST(self):
            url = urlparse(self.path)
            body = self._body()
            try:
                if url.path == "/v1/charges/lookup":
                    return self._send(*gateway.lookup_many(body.get("idempotency_keys") or []))
                attempt = 0
                if url.path == "/v1/charges" and body.get("idempotency_key"):
                    # Counted on arrival, so tests can see a request is in flight.
                    attempt = gateway.ledger.count_attempt(str(body["idempotency_key"]))
                if self._chaos():
                    return None
                if url.path == "/v1/charges":
                    return self._send(*gateway.charge(body, attempt))
                if url.path == "/v1/tokens":
                    return self._send(*gateway.tokenize(body))
                if url.path == "/v1/refunds":
                    return self._send(*gateway.refund(body))
                if url.path == "/v1/disputes":
                    return self._send(*gateway.dispute(body))
                return self._send(404, {"error": "not_found"})
            except Exception as exc:  # noqa: BLE001
                logger.exception("gateway error")
                return self._send(500, {"error": "internal", "detail": str(exc)[:200]})

    return Handler


def default_dsn(environ) -> str:
    """The ledger beside the shop's own database: ``<its name>_gateway`` on the same server,
    so a second install (another DATABASE_URL) gets a ledger of its own."""
    shop = environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/flashsale"
    if shop.startswith("postgres://"):
        shop = "postgresql://" + shop.removeprefix("postgres://")
    info = psycopg.conninfo.conninfo_to_dict(shop)
    return psycopg.conninfo.make_conninfo(
        "", **{**info, "dbname": f"{info.get('dbname') or 'flashsale'}_gateway"}
    )


def parse_args(argv=None):
    import os

    parser = argparse.ArgumentParser(description="Simulated payment gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", 8010)))
    parser.add_argument("--name", default=os.environ.get("GATEWAY_NAME", "primary"))
    parser.add_argument(
        "--dsn",
        default=os.environ.get("GATEWAY_DATABASE_URL") or default_dsn(os.environ),
        help="the ledger's database (default: DATABASE_URL's server, database <name>_gateway)",
    )
    parser.add_argument(
        "--failure-rate", type=float, default=float(os.environ.get("GATEWAY_FAILURE_RATE", 0))
    )
    parser.add_argument(
        "--latency-ms", type=int, default=int(os.environ.get("GATEWAY_LATENCY_MS", 0))
    )
    parser.add_argument(
        "--slow-seconds", type=float, default=float(os.environ.get("GATEWAY_SLOW_SECONDS", 20))
    )
    parser.add_argument(
        "--hang-seconds", type=float, default=float(os.environ.get("GATEWAY_HANG_SECONDS", 30))
    )
    parser.add_argument(
        "--pool-size", type=int, default=int(os.environ.get("GATEWAY_DB_POOL_SIZE", 10))
    )
    parser.add_argument(
        "--verbose", action="store_true", default=bool(os.environ.get("GATEWAY_VERBOSE"))
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway %(message)s")
    opts = parse_args(argv)
    if opts.name.replace("_", "").isalnum() is False:
        sys.exit("--name must be alphanumeric")
    gateway = Gateway(Ledger(opts.dsn, opts.name, opts.pool_size), opts)
    server = ThreadingHTTPServer((opts.host, opts.port), make_handler(gateway))
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    logger.info("simulated gateway %r on http://%s:%s", opts.name, opts.host, opts.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        gateway.ledger.pool.close()
