"""JSON error pages for the API; HTML ones for the shop's pages."""

from django.views.defaults import page_not_found, server_error

from .http import json_response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return json_response({"error": "not_found", "detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def internal_error(request):
    if _is_api(request):
        return json_response(
            {
                "error": "server_error",
                "detail": "Something went wrong on "
                "our side; nothing was charged or reserved twice.",
            },
            status=500,
        )
    return server_error(request)
