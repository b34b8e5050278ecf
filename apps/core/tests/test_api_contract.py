"""The API keeps its own contract: /api/schema/ is valid OpenAPI 3.0.3, documents every status
an operation can give with the {"error", "detail"} body, and every /api/ answer the schema
does not describe (a wrong method, a malformed id) is still a JSON error. The docs page works
without the internet. Schemathesis checks the responses against the schema
(apps/protection/tests/test_schema.py)."""

from __future__ import annotations

import re
import uuid

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator

from conftest import bearer

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_the_schema_is_valid_openapi_3_0_3(schema):
    assert schema["openapi"] == "3.0.3"
    OpenAPIV30SpecValidator(schema).validate()
    # 3.1's type lists ("type": ["integer", "null"]) are not 3.0: nullable is.
    assert not [node for node in _walk(schema) if isinstance(node.get("type"), list)]


# What each operation can answer besides success (found by hand, by schemathesis and by the
# adversarial run of issue 10). 429 and 503 can come from the protection middleware anywhere.
EXPECTED = {
    ("get", "/api/v1/flash_sales/"): {429, 503},
    ("get", "/api/v1/flash_sales/{sale_id}"): {404, 429, 503},
    ("get", "/api/v1/flash_sales/{sale_id}/challenge"): {404, 429, 503},
    ("post", "/api/v1/auth/token"): {400, 401, 413, 415, 429, 503},
    ("get", "/api/v1/orders/{order_id}"): {401, 404, 429, 503},
    ("get", "/api/v1/flash_sales/{sale_id}/order"): {401, 404, 429, 503},
    ("post", "/api/v1/orders/{order_id}/pay"): {
        400, 401, 402, 403, 404, 409, 410, 413, 415, 422, 429, 503,
    },
    ("post", "/api/v1/flash_sales/{sale_id}/purchase"): {
        400, 401, 403, 404, 409, 410, 413, 422, 425, 429, 503,
    },
    ("post", "/api/v1/flash_sales/{sale_id}/waiting_room"): {
        400, 401, 403, 404, 409, 410, 413, 425, 429, 503,
    },
    ("get", "/api/v1/flash_sales/{sale_id}/waiting_room/position"): {
        401, 404, 410, 425, 429, 503,
    },
    ("get", "/api/v1/flash_sales/{sale_id}/waiting_room/now_serving"): {404, 429, 503},
}  # fmt: skip


def _api_operations(schema):
    for path, item in schema["paths"].items():
        if path.startswith("/api/"):
            for method in METHODS:
                if method in item:
                    yield method, path, item[method]


def test_every_status_an_operation_gives_is_documented_with_the_error_body(schema):
    operations = {(method, path): op for method, path, op in _api_operations(schema)}
    assert set(operations) == set(EXPECTED)
    for key, operation in operations.items():
        documented = {int(code) for code in operation["responses"]}
        assert EXPECTED[key] <= documented, (key, EXPECTED[key] - documented)
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/Error"}, (key, code)
        if 401 in documented and "security" in operation:  # required, not optional
            assert operation["security"] == [{"bearerAuth": []}], key
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "detail"}


def _url(path: str, sale) -> str:
    return path.replace("{sale_id}", str(sale.id)).replace("{order_id}", str(uuid.uuid4()))


def test_an_undocumented_method_is_a_json_405_with_allow(
    client, settings, schema, make_sale, shopper
):
    settings.RATELIMIT_ENABLE = False
    sale = make_sale()
    checked = 0
    for path, item in schema["paths"].items():
        if not path.startswith("/api/"):
            continue
        documented = {method.upper() for method in item if method in METHODS}
        for method in METHODS:
            if method.upper() in documented:
                continue
            response = getattr(client, method)(
                _url(path, sale), content_type="application/json", **bearer(shopper)
            )
            where = (method, path, response.status_code, response.content[:200])
            assert response.status_code == 405, where
            assert response["Content-Type"] == "application/json", where
            assert {"error", "detail"} <= set(response.json()), where
            allowed = {name.strip() for name in response["Allow"].split(",")}
            assert documented <= allowed, where
            checked += 1
    assert checked >= 30


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/v1/orders/not-a-uuid", "/api/v1/orders/1/pay"])
def test_a_malformed_order_id_is_a_json_404(client, settings, shopper, debug, path):
    settings.DEBUG = debug
    send = client.post if path.endswith("/pay") else client.get
    response = send(path, {"card_number": "4242424242424242"}, **bearer(shopper),
                    content_type="application/json")  # fmt: skip
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "order_not_found"


def test_the_docs_page_loads_only_our_own_assets(client, settings):
    settings.WHITENOISE_USE_FINDERS = True  # as after collectstatic (make run, the image)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "googleapis" not in page and "cdn." not in page and "@latest" not in page
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    urls += re.findall(r"""fetch\(["']([^"']+)["']""", page)
    assert urls, page[:500]
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
    assert any("redoc" in url for url in urls)
    # The policy the browser enforces allows nothing from elsewhere either.
    policy = response["Content-Security-Policy"]
    assert "http" not in policy, policy


@pytest.mark.parametrize("key", ["é", "k\u00a0", "\x85", "k" * 256])
def test_pay_refuses_a_malformed_idempotency_key(client, shopper, key):
    """The same rule as the purchase: a key is 1-255 printable ASCII characters, never cut
    short (two long keys sharing 255 characters were one payment) nor called missing."""
    response = client.post(
        f"/api/v1/orders/{uuid.uuid4()}/pay",
        {"card_number": "4242424242424242"},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        **bearer(shopper),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_idempotency_key"


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("delete", "/api/schema/", 405),
        ("post", "/api/docs/", 405),
        ("get", "/api/schema/?format=nope", 404),
    ],
)
def test_the_schema_and_docs_views_refuse_in_json_too(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert {"error", "detail"} <= set(response.json())
