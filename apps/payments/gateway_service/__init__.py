"""The simulated payment gateway: a small HTTP service of its own (Starlette on granian, no
Django), with its own ledger in PostgreSQL, so timeouts and 5xx are real network events and
the shop can ask it what really happened. Run: ``python -m apps.payments.gateway_service
--port 8010`` (one process), or the Procfile's ``granian --interface asgi --factory`` line."""
