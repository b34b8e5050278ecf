"""The one application error type; views and the API turn it into a JSON error body."""

from __future__ import annotations


class ApplicationError(Exception):
    """A refusal the client should see: an HTTP status, a stable code and a readable detail."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict | None = None,
        headers: dict | None = None,
    ):
        super().__init__(detail or self.code)
        self.detail = detail or self.code.replace("_", " ")
        if code:
            self.code = code
        if status:
            self.status = status
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.code, "detail": self.detail, **self.extra}


class BadRequest(ApplicationError):
    status, code = 400, "bad_request"


class NotAuthenticated(ApplicationError):
    status, code = 401, "not_authenticated"


class Forbidden(ApplicationError):
    status, code = 403, "forbidden"


class NotFound(ApplicationError):
    status, code = 404, "not_found"


class Conflict(ApplicationError):
    status, code = 409, "conflict"


class Gone(ApplicationError):
    status, code = 410, "gone"


class TooEarly(ApplicationError):
    status, code = 425, "not_started"


class Unprocessable(ApplicationError):
    status, code = 422, "unprocessable"


class ServiceUnavailable(ApplicationError):
    status, code = 503, "unavailable"

    def __init__(self, detail: str = "", *, retry_after: int = 1, **kwargs):
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", str(retry_after))
