"""OpenAPI description of the purchase, a hand-written view (see apps.core.schema)."""

from apps.core.schema import errors, json_response

RESERVATION = {
    "type": "object",
    "required": ["order_id", "status", "reservation_expires_at", "payment_url"],
    "properties": {
        "order_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "description": "reserved, or where the order is now"},
        "reservation_expires_at": {"type": "string", "format": "date-time"},
        "payment_url": {"type": "string"},
        "remaining_inventory": {"type": "integer", "nullable": True},
        "degraded": {
            "type": "boolean",
            "description": "True when Redis was away and PostgreSQL alone took the order.",
        },
    },
}

PURCHASE = {
    "operationId": "flash_sale_purchase",
    "summary": "Reserve units (needs an admission token from the waiting room)",
    "description": (
        "Replaying a request with the same X-Idempotency-Key and body returns the same order "
        "(200); the same key with another body is 422. Unknown fields and nulls are refused "
        "(400 unknown_field, invalid_quantity, invalid_product_id)."
    ),
    "tags": ["orders"],
    "security": [{"bearerAuth": []}],
    "parameters": [
        {"name": "sale_id", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "X-Idempotency-Key",
            "in": "header",
            "required": True,
            "description": "One per purchase attempt: 1-255 printable ASCII characters.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "pattern": "^[ -~]*[!-~][ -~]*$",
            },
        },
        {
            "name": "X-Shopper-Token",
            "in": "header",
            "required": False,
            "description": "Optional: the shopper's own token, checked against the admission.",
            "schema": {"type": "string"},
        },
    ],
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "product_id": {"type": "string", "format": "uuid"},
                    },
                    "additionalProperties": False,
                }
            }
        }
    },
    "responses": {
        "201": json_response("Reserved", RESERVATION),
        "200": json_response("A replay of an earlier request", RESERVATION),
        **errors(401, 403, 404, 409, 410, 422, 425),
    },
}
