"""``python -m apps.payments.gateway_service``: the simulated gateway in one process, its
Starlette app (app.py) served by granian's embedded server. One process on purpose: killing
it is a real outage of the gateway (the tests' outages do that), with no worker left behind.
The Procfile serves the same app with ``granian --interface asgi --factory``."""

from __future__ import annotations

import asyncio
import logging
import signal

from granian.constants import Interfaces
from granian.server.embed import Server

from .app import gateway_app, gateway_open
from .options import options_parse

logger = logging.getLogger("gateway")


async def _serve(server: Server) -> None:
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, server.stop)
    await server.serve()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway %(message)s")
    options = options_parse(argv)
    app = gateway_app(gateway_open(options))
    server = Server(
        app,
        address=options.host,
        port=options.port,
        interface=Interfaces.ASGI,
        backlog=1024,
        log_access=options.verbose,
    )
    logger.info("simulated gateway %r on http://%s:%s", options.name, options.host, options.port)
    asyncio.run(_serve(server))
