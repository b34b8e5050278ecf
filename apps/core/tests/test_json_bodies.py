"""Every endpoint that takes a JSON body refuses a bad one with a JSON 4xx, never a 500 or an
HTML page: nested past the depth bound, over the size bound, not UTF-8, duplicate keys, bad
numbers and text, unknown fields, nulls. The list of endpoints is checked against
/api/schema/, so a new endpoint with a body must join it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest

from conftest import admitted, bearer

pytestmark = pytest.mark.django_db


@dataclass
class Endpoint:
    path: str  # as in the schema
    body: dict  # a valid body
    ok_status: int  # what the valid body gets from this set-up (proves auth and headers)

    def url(self, sale) -> str:
        return self.path.replace("{sale_id}", str(sale.id)).replace("{order_id}", str(uuid.uuid4()))

    def headers(self, sale, shopper) -> dict:
        if self.path.endswith("/purchase"):
            return {**admitted(shopper, sale), "HTTP_X_IDEMPOTENCY_KEY": uuid.uuid4().hex}
        if self.path.endswith("/auth/token"):
            return {}
        return bearer(shopper)


ENDPOINTS = {
    # An unknown user: the body was read, the credentials refused.
    "/api/v1/auth/token": Endpoint(
        "/api/v1/auth/token", {"username": "nobody", "password": "wrong"}, 401
    ),
    "/api/v1/flash_sales/{sale_id}/purchase": Endpoint(
        "/api/v1/flash_sales/{sale_id}/purchase", {"quantity": 1}, 201
    ),
    "/api/v1/flash_sales/{sale_id}/waiting_room": Endpoint(
        "/api/v1/flash_sales/{sale_id}/waiting_room", {"website": ""}, 200
    ),
    # A random order: the body was read, the order is not the shopper's.
    "/api/v1/orders/{order_id}/pay": Endpoint(
        "/api/v1/orders/{order_id}/pay",
        {"card_number": "4242424242424242", "exp_month": "12", "exp_year": "2040", "cvc": "123"},
        404,
    ),
}

TEN_MB = 10 * 1024 * 1024


def _bodies(endpoint: Endpoint) -> dict[str, tuple[bytes, int, str]]:
    """name -> (raw body, status, error code)."""
    field, value = next(iter(endpoint.body.items()))
    valid = json.dumps(endpoint.body)
    return {
        "nested_arrays": (b"[" * 1000 + b"]" * 1000, 400, "json_too_deep"),
        "nested_objects": (b'{"a":' * 1000 + b"1" + b"}" * 1000, 400, "json_too_deep"),
        "nested_in_a_field": (
            json.dumps({field: "X"}).replace('"X"', "[" * 500 + "]" * 500).encode(),
            400,
            "json_too_deep",
        ),
        "huge": (b'{"x": "' + b"a" * TEN_MB + b'"}', 413, "body_too_large"),
        "not_utf8": (valid.encode()[:-1] + b', "x": "\xff\xfe"}', 400, "malformed_json"),
        "utf16": (valid.encode("utf-16"), 400, "malformed_json"),
        "lone_surrogate": (valid.encode()[:-1] + b', "x": "\\ud800"}', 400, "malformed_json"),
        "nan": (valid.encode()[:-1] + b', "x": NaN}', 400, "malformed_json"),
        "duplicate_key": (
            f'{{"{field}": {json.dumps(value)}, "{field}": {json.dumps(value)}}}'.encode(),
            400,
            "duplicate_key",
        ),
        "not_json": (b"{nope", 400, "malformed_json"),
        "unknown_field": (json.dumps({**endpoint.body, "website2": {}}).encode(), 400, ""),
    }


CASES = [
    pytest.param(path, case, id=f"{path.rsplit('/', 1)[-1]}-{case}")
    for path, endpoint in ENDPOINTS.items()
    for case in _bodies(endpoint)
]


@pytest.fixture
def live_sale(make_sale):
    return make_sale(inventory=5, pow_difficulty=0)


def _post(client, endpoint, sale, shopper, raw: bytes):
    return client.post(
        endpoint.url(sale), raw, content_type="application/json", **endpoint.headers(sale, shopper)
    )


def _schema(client) -> dict:
    return client.get("/api/schema/?format=json").json()


def test_every_endpoint_with_a_body_is_covered(client):
    schema = _schema(client)
    with_body = {
        path
        for path, item in schema["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict) and "requestBody" in operation
    }
    assert with_body == set(ENDPOINTS)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_valid_body_gets_through(client, live_sale, shopper, path):
    endpoint = ENDPOINTS[path]
    response = _post(client, endpoint, live_sale, shopper, json.dumps(endpoint.body).encode())
    assert response.status_code == endpoint.ok_status, response.content


@pytest.mark.parametrize("path, case", CASES)
def test_a_bad_body_is_a_json_4xx(client, live_sale, shopper, path, case):
    endpoint = ENDPOINTS[path]
    raw, status, code = _bodies(endpoint)[case]
    response = _post(client, endpoint, live_sale, shopper, raw)
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and isinstance(body["detail"], str)
    if code:
        assert body["error"] == code
    if case == "unknown_field":
        assert body["error"] == "unknown_field" and "website2" in body["detail"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_null_field_is_refused(client, live_sale, shopper, path):
    """Every documented field: null is not a way to leave it out ({"product_id": null} was
    taken as no product_id)."""
    endpoint = ENDPOINTS[path]
    schema = _schema(client)
    body_schema = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    body_schema = body_schema["schema"]
    if "$ref" in body_schema:
        body_schema = schema["components"]["schemas"][body_schema["$ref"].rsplit("/", 1)[-1]]
    fields = sorted(body_schema["properties"])
    assert fields
    for field in fields:
        raw = json.dumps({**endpoint.body, field: None}).encode()
        response = _post(client, endpoint, live_sale, shopper, raw)
        assert response.status_code == 400, (field, response.content)
        assert {"error", "detail"} <= set(response.json())
