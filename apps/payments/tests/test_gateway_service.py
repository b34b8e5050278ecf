"""The simulated gateway as the Procfile runs it (``granian --interface asgi --factory``, its
options from GATEWAY_* variables): the same HTTP API as the one-process server the other
tests start, JSON errors for a wrong path or a bad query, and SIGTERM stops it and its
worker."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import httpx

from apps.core.testing.fleet import procfile_command
from apps.core.testing.ports import free_port

from .conftest import GATEWAY_DSN, ROOT, _log_file, wait_for
from .test_services import OK


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_procfile_gateway_serves_the_api_and_stops_on_sigterm(fresh_gateway_ledger):
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "GATEWAY_NAME": "procfile",
        "GATEWAY_DATABASE_URL": GATEWAY_DSN,
        "GATEWAY_DB_POOL_SIZE": "2",
    }
    log = _log_file("gateway-procfile-")
    process = subprocess.Popen(
        procfile_command("gateway", env),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(url), timeout=60, what="the Procfile's gateway")
        assert httpx.get(url + "/health").json() == {"ok": True, "name": "procfile"}

        token = httpx.post(url + "/v1/tokens", json={"card": {"number": OK}}, timeout=5)
        assert token.status_code == 200, token.text
        key = uuid.uuid4().hex
        charge = {"amount": "5.00", "source": token.json()["id"], "idempotency_key": key}
        first = httpx.post(url + "/v1/charges", json=charge, timeout=5)
        replayed = httpx.post(url + "/v1/charges", json=charge, timeout=5)
        assert first.status_code == replayed.status_code == 200
        assert first.json()["status"] == "succeeded"
        assert replayed.json()["id"] == first.json()["id"]

        nowhere = httpx.get(url + "/v1/nowhere", timeout=5)
        assert (nowhere.status_code, nowhere.json()) == (404, {"error": "not_found"})
        bad_limit = httpx.get(url + "/v1/charges", params={"limit": "many"}, timeout=5)
        assert bad_limit.status_code == 400
        assert bad_limit.json()["error"] == "invalid_request"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        pass  # the worker went with it
    else:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("a gateway worker outlived SIGTERM")
