from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from . import (
            schema,  # noqa: F401  (registers the Bearer auth extension)
            signals,  # noqa: F401  (connects the Celery request-id and trace handlers)
        )
        from .tracing import tracing_setup

        tracing_setup(
            endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT, service_name=settings.OTEL_SERVICE_NAME
        )
