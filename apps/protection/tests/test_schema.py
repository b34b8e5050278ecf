"""Schemathesis over every endpoint of /api/schema/, bounded examples: no 500, and every
documented response matches the schema. The longer run is scripts/fuzz."""

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
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import bearer

from .conftest import purchase_auth


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


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "6")),
    deadline=None,
    derandomize="SCHEMA_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_api_matches_its_schema_and_never_500s(case, live_sale, shopper, django_settings_fix):
    if "sale_id" in (case.path_parameters or {}) and zlib.crc32(repr(case.body).encode()) % 3:
        case.path_parameters["sale_id"] = str(live_sale.id)
    if case.headers is None:
        case.headers = {}
    # Mostly a real shopper; sometimes the generated credentials.
    if zlib.crc32(repr(case.headers).encode()) % 4:
        auth = (
            purchase_auth(shopper, live_sale)
            if case.path.endswith("/purchase")
            else bearer(shopper)
        )
        case.headers["Authorization"] = auth["HTTP_AUTHORIZATION"]
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            response_schema_conformance,
            content_type_conformance,
            response_headers_conformance,
            allow_header_conformance,
            negative_data_rejection,
            missing_required_header,
        ]
    )


@pytest.fixture
def django_settings_fix(settings):
    settings.RATELIMIT_ENABLE = False
    return settings
