"""The simulated gateway's ledger: charges, refunds, per-key attempt counts and the card vault,
in PostgreSQL tables of this gateway (``gateway_<name>_*``) in a database of its own."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


class Ledger:
    """Charges, refunds and per-key attempt counts in PostgreSQL tables of this gateway."""

    def __init__(self, dsn: str, name: str, pool_size: int = 10):
        self.name = name
        self.charges = f"gateway_{name}_charges"
        self.refunds = f"gateway_{name}_refunds"
        self.attempts = f"gateway_{name}_attempts"
        self.tokens = f"gateway_{name}_tokens"
        database_ensure(dsn)
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


def database_ensure(dsn: str) -> None:
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
