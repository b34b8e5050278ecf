"""Schemathesis over every operation of /api/schema/, against the real services: no 500, every
status code and content type documented, every response (body and headers) matching the
schema, invalid input refused with a 4xx. ``make test`` runs a few derandomized examples per
operation; ``scripts/fuzz`` runs many random ones and the stateful run (sequences of calls
following the links schemathesis infers, e.g. a sale's id from the list into the purchase)."""

from __future__ import annotations

import os
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import bearer

from .conftest import purchase_auth

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
    allow_header_conformance,
    negative_data_rejection,
    missing_required_header,
    ignored_auth,
]
EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "6"))


def _load_schema():
    from flashsale.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


schema = _load_schema()


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """The WSGI app runs in-process. Like Django's test client, keep the request signals
    from closing the test's database connection (its transaction holds the fixtures)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def live_sale(make_sale):
    return make_sale(inventory=50, pow_difficulty=0, max_per_user=2)


@pytest.fixture
def no_rate_limits(settings):
    settings.RATELIMIT_ENABLE = False
    return settings


def _aim(case, sale, shopper) -> None:
    """Mostly at the live sale with a real shopper's credentials; sometimes with what
    schemathesis generated (an unknown sale, no or bad credentials)."""
    if "sale_id" in (case.path_parameters or {}) and zlib.crc32(repr(case.body).encode()) % 3:
        case.path_parameters["sale_id"] = str(sale.id)
    if case.headers is None:
        case.headers = {}
    if zlib.crc32(repr(case.headers).encode()) % 4:
        auth = purchase_auth(shopper, sale) if case.path.endswith("/purchase") else bearer(shopper)
        case.headers["Authorization"] = auth["HTTP_AUTHORIZATION"]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="SCHEMA_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_api_matches_its_schema_and_never_500s(case, live_sale, shopper, no_rate_limits):
    _aim(case, live_sale, shopper)
    case.call_and_validate(checks=CHECKS)


@pytest.mark.skipif("SCHEMA_FUZZ_STATEFUL" not in os.environ, reason="long: scripts/fuzz runs it")
@pytest.mark.django_db
def test_api_sequences_keep_the_contract(live_sale, shopper, no_rate_limits):
    class Machine(schema.as_state_machine()):
        def before_call(self, case):
            _aim(case, live_sale, shopper)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Machine.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
