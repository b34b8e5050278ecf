from django.apps import AppConfig


class ProtectionConfig(AppConfig):
    name = "apps.protection"
    label = "protection"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the Bearer auth extension)
