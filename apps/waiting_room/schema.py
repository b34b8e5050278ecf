"""OpenAPI descriptions of the waiting room's hand-written views (see apps.core.schema)."""

from apps.core.schema import errors, json_response

SALE_ID = {"name": "sale_id", "in": "path", "required": True, "schema": {"type": "string"}}

PLACE = {
    "type": "object",
    "required": [
        "position",
        "rank",
        "estimated_wait_seconds",
        "status",
        "websocket_url",
        "now_serving",
    ],
    "properties": {
        "position": {"type": "integer", "description": "Shoppers ahead (0 once admitted)."},
        "rank": {"type": "integer", "description": "Place in the draw (0 before the start)."},
        "estimated_wait_seconds": {"type": "integer"},
        "status": {"type": "string", "description": "waiting, ready, ..."},
        "websocket_url": {"type": "string"},
        "now_serving": {"type": "integer"},
        "admission_used": {"type": "boolean"},
        "order_id": {"type": "string", "format": "uuid", "description": "The admission's order."},
        "order_url": {"type": "string"},
        "units_held": {"type": "integer", "description": "Units the shopper's orders hold."},
        "admission_token": {"type": "string", "description": "When ready: buy with it."},
        "admission_expires_at": {"type": "string", "format": "date-time"},
    },
}

NOW_SERVING = {
    "type": "object",
    "required": ["now_serving", "admission_rate", "status", "units_left"],
    "properties": {
        "now_serving": {"type": "integer"},
        "admission_rate": {"type": "number", "description": "Shoppers admitted per second."},
        "status": {"type": "string"},
        "units_left": {"type": "integer", "nullable": True},
    },
}

JOIN = {
    "operationId": "waiting_room_join",
    "summary": "Join the sale's waiting room with a proof-of-work answer",
    "description": "Joining twice keeps the place. Unknown fields and nulls are refused.",
    "tags": ["waiting room"],
    "security": [{"bearerAuth": []}],
    "parameters": [SALE_ID],
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "challenge": {"type": "string"},
                        "nonce": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                        "website": {"type": "string", "description": "Honeypot: leave empty."},
                    },
                    "additionalProperties": False,
                }
            }
        }
    },
    "responses": {
        "200": json_response("The shopper's place", PLACE),
        **errors(401, 403, 404, 409, 410, 425),
    },
}

POSITION = {
    "operationId": "waiting_room_position",
    "summary": "The shopper's place; when ready, their admission token",
    "tags": ["waiting room"],
    "security": [{"bearerAuth": []}],
    "parameters": [SALE_ID],
    "responses": {
        "200": json_response("The shopper's place", PLACE),
        **errors(401, 404, 410, 425),
    },
}

NOW_SERVING_OPERATION = {
    "operationId": "waiting_room_now_serving",
    "summary": "The sale's queue progress (public)",
    "tags": ["waiting room"],
    "security": [],
    "parameters": [SALE_ID],
    "responses": {
        "200": json_response("Progress", NOW_SERVING),
        **errors(404),
    },
}
