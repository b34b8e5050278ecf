"""The simulated gateway's HTTP API: a Starlette app whose routes are declared below, served by
granian (``server.py`` for one process, or the Procfile's ``granian --interface asgi``).

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

The operations are blocking (psycopg, and the test cards' deliberate waits), so each runs in
a worker thread; a client that gives up does not stop it (a slow charge still commits, as at
a real provider). The thread limit is raised so that hanging cards do not queue the others,
as with a thread per request.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .gateway import Gateway
from .ledger import Ledger
from .options import GatewayOptions, options_from_environ

logger = logging.getLogger("gateway")

# Requests served at once (each blocking operation holds a thread, a hanging card for
# --hang-seconds); beyond the database pool they wait for a connection, as before.
OPERATION_THREADS = 256

Answer = tuple[int, dict]
Operation = Callable[[Gateway, Request], Awaitable[Answer]]


async def _request_body(request: Request) -> dict:
    """The JSON object sent, or {} (no body, not JSON, not an object)."""
    try:
        value = await request.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def _chaos(options: GatewayOptions) -> Answer | None:
    """The configured latency, then a 503 for the configured share of requests."""
    if options.latency_ms:
        await asyncio.sleep(options.latency_ms / 1000 * random.uniform(0.5, 1.5))
    if options.failure_rate and random.random() < options.failure_rate:
        return 503, {"error": "chaos"}
    return None


async def health(gateway: Gateway, request: Request) -> Answer:
    return 200, {"ok": True, "name": gateway.ledger.name}


async def attempts_count(gateway: Gateway, request: Request) -> Answer:
    key = request.query_params.get("idempotency_key", "")
    return 200, {"n": await run_in_threadpool(gateway.ledger.attempts_of, key)}


async def charges_list(gateway: Gateway, request: Request) -> Answer:
    """One charge by key, the changes since a time (paged), or the ledger by creation."""
    query = request.query_params
    if "idempotency_key" in query:
        return await _chaos(gateway.opts) or await run_in_threadpool(
            gateway.lookup, query["idempotency_key"]
        )
    try:
        limit = int(query.get("limit", "1000"))
        if "changed_since" in query or "after" in query:
            return await run_in_threadpool(
                gateway.list_changes, query.get("changed_since"), query.get("after", ""), limit
            )
        return await run_in_threadpool(
            gateway.list_charges,
            query.get("status", "succeeded"),
            query.get("since"),
            limit,
            query.get("refunded") == "false",
        )
    except ValueError:  # a limit, time or cursor that does not parse
        return 400, {"error": "invalid_request", "detail": "limit, since or after"}


async def charges_lookup(gateway: Gateway, request: Request) -> Answer:
    body = await _request_body(request)
    return await run_in_threadpool(gateway.lookup_many, body.get("idempotency_keys") or [])


async def charge_create(gateway: Gateway, request: Request) -> Answer:
    body = await _request_body(request)
    attempt = 0
    if body.get("idempotency_key"):
        # Counted on arrival, so tests can see a request is in flight.
        attempt = await run_in_threadpool(
            gateway.ledger.count_attempt, str(body["idempotency_key"])
        )
    return await _chaos(gateway.opts) or await run_in_threadpool(gateway.charge, body, attempt)


async def token_create(gateway: Gateway, request: Request) -> Answer:
    body = await _request_body(request)
    return await _chaos(gateway.opts) or await run_in_threadpool(gateway.tokenize, body)


async def refund_create(gateway: Gateway, request: Request) -> Answer:
    body = await _request_body(request)
    return await _chaos(gateway.opts) or await run_in_threadpool(gateway.refund, body)


async def dispute_create(gateway: Gateway, request: Request) -> Answer:
    body = await _request_body(request)
    return await _chaos(gateway.opts) or await run_in_threadpool(gateway.dispute, body)


def _endpoint(operation: Operation):
    """The operation's answer as JSON; an error in it is a 500, the gateway does not die."""

    async def endpoint(request: Request) -> JSONResponse:
        try:
            status, body = await operation(request.app.state.gateway, request)
        except Exception as exc:  # noqa: BLE001 - a gateway answers 500, it does not die
            logger.exception("gateway error")
            status, body = 500, {"error": "internal", "detail": str(exc)[:200]}
        return JSONResponse(body, status_code=status)

    endpoint.__name__ = operation.__name__
    return endpoint


ROUTES = [
    Route("/health", _endpoint(health), methods=["GET"]),
    Route("/v1/attempts", _endpoint(attempts_count), methods=["GET"]),
    Route("/v1/charges", _endpoint(charges_list), methods=["GET"]),
    Route("/v1/charges", _endpoint(charge_create), methods=["POST"]),
    Route("/v1/charges/lookup", _endpoint(charges_lookup), methods=["POST"]),
    Route("/v1/tokens", _endpoint(token_create), methods=["POST"]),
    Route("/v1/refunds", _endpoint(refund_create), methods=["POST"]),
    Route("/v1/disputes", _endpoint(dispute_create), methods=["POST"]),
]


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    error = "not_found" if exc.status_code == 404 else "method_not_allowed"
    return JSONResponse({"error": error}, status_code=exc.status_code, headers=exc.headers)


def gateway_app(gateway: Gateway) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette):
        anyio.to_thread.current_default_thread_limiter().total_tokens = OPERATION_THREADS
        try:
            yield
        finally:
            gateway.ledger.pool.close()

    app = Starlette(
        routes=ROUTES, exception_handlers={HTTPException: _http_error}, lifespan=lifespan
    )
    app.state.gateway = gateway
    return app


def gateway_open(options: GatewayOptions) -> Gateway:
    """The gateway on its ledger (the database is created if missing)."""
    return Gateway(Ledger(options.dsn, options.name, options.pool_size), options)


def gateway_app_from_environ() -> Starlette:
    """The factory ``granian --interface asgi --factory`` serves: options from GATEWAY_*."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway %(message)s")
    return gateway_app(gateway_open(options_from_environ()))
