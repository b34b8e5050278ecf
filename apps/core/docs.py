"""The schema (/api/schema/) and docs (/api/docs/) views."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView
from rest_framework.renderers import JSONRenderer


class _JsonErrors:
    """The schema and docs views answer with YAML or HTML; their errors are JSON like the rest
    of /api/."""

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(response, "status_code", 200) >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class SchemaView(_JsonErrors, SpectacularAPIView):
    pass


class DocsView(_JsonErrors, SpectacularRedocView):
    template_name = "api/docs.html"
