"""The simulated gateway's options: command-line flags, each defaulting to a GATEWAY_*
environment variable (so ``granian --factory`` gets them from the environment alone)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class GatewayOptions:
    host: str
    port: int
    name: str
    dsn: str
    failure_rate: float
    latency_ms: int
    slow_seconds: float
    hang_seconds: float
    pool_size: int
    verbose: bool


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


def options_parse(argv: list[str] | None = None) -> GatewayOptions:
    env = os.environ
    parser = argparse.ArgumentParser(description="Simulated payment gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(env.get("GATEWAY_PORT", 8010)))
    parser.add_argument("--name", default=env.get("GATEWAY_NAME", "primary"))
    parser.add_argument(
        "--dsn",
        default=env.get("GATEWAY_DATABASE_URL") or default_dsn(env),
        help="the ledger's database (default: DATABASE_URL's server, database <name>_gateway)",
    )
    parser.add_argument(
        "--failure-rate", type=float, default=float(env.get("GATEWAY_FAILURE_RATE", 0))
    )
    parser.add_argument("--latency-ms", type=int, default=int(env.get("GATEWAY_LATENCY_MS", 0)))
    parser.add_argument(
        "--slow-seconds", type=float, default=float(env.get("GATEWAY_SLOW_SECONDS", 20))
    )
    parser.add_argument(
        "--hang-seconds", type=float, default=float(env.get("GATEWAY_HANG_SECONDS", 30))
    )
    parser.add_argument("--pool-size", type=int, default=int(env.get("GATEWAY_DB_POOL_SIZE", 10)))
    parser.add_argument("--verbose", action="store_true", default=bool(env.get("GATEWAY_VERBOSE")))
    options = GatewayOptions(**vars(parser.parse_args(argv)))
    if not options.name.replace("_", "").isalnum():
        parser.error("--name must be alphanumeric")
    return options


def options_from_environ() -> GatewayOptions:
    return options_parse([])
