from django.apps import AppConfig


class ProtectionConfig(AppConfig):
    name = "apps.protection"
    label = "protection"
