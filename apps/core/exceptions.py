"""DRF exception handler: every error, ours, DRF's or Django's, becomes {"error", "detail"}."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from .errors import ApplicationError
from .parsers import body_too_large

_DRF_CODES = {
    status.HTTP_400_BAD_REQUEST: "bad_request",
    status.HTTP_401_UNAUTHORIZED: "not_authenticated",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "rate_limited",
}
UNKNOWN_FIELD = "unknown_field"


def _codes(value) -> list[str]:
    if isinstance(value, dict):
        return [code for item in value.values() for code in _codes(item)]
    if isinstance(value, list):
        return [code for item in value for code in _codes(item)]
    return [str(value)]


def _validation_body(exc: exceptions.ValidationError) -> dict:
    detail = exc.detail
    if isinstance(detail, dict):
        unknown = sorted(
            name for name, codes in exc.get_codes().items() if UNKNOWN_FIELD in _codes(codes)
        )
        if unknown:
            return {
                "error": UNKNOWN_FIELD,
                "detail": f"Unknown field(s): {', '.join(unknown)}.",
                "fields": detail,
            }
    if isinstance(detail, dict | list):
        return {"error": "bad_request", "detail": "Invalid input.", "fields": detail}
    return {"error": "bad_request", "detail": str(detail)}


def api_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = body_too_large()
    if isinstance(exc, ApplicationError):
        return Response(exc.body(), status=exc.status, headers=exc.headers)
    if isinstance(exc, Http404):
        return Response({"error": "not_found", "detail": "Not found."}, status=404)
    if isinstance(exc, PermissionDenied):
        return Response({"error": "forbidden", "detail": str(exc) or "Forbidden."}, status=403)
    if isinstance(exc, SuspiciousOperation):
        return Response({"error": "bad_request", "detail": "Bad request."}, status=400)
    if isinstance(exc, exceptions.APIException):
        code = _DRF_CODES.get(exc.status_code, "error")
        if isinstance(exc, exceptions.ParseError):
            code = "malformed_json"
        if isinstance(exc, exceptions.ValidationError):
            body = _validation_body(exc)
        elif isinstance(exc.detail, dict | list):
            body = {"error": code, "detail": "Invalid input.", "fields": exc.detail}
        else:
            body = {"error": code, "detail": str(exc.detail)}
        headers = {}
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait) or 1)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        return Response(body, status=exc.status_code, headers=headers)
    return None
