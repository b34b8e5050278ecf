from django.apps import AppConfig

from apps.waiting_room.screening import join_screen_add


class ProtectionConfig(AppConfig):
    name = "apps.protection"
    label = "protection"

    def ready(self) -> None:
        from .services import join_screen_step

        # Every waiting-room join is screened (block list, proof of work, bot signals).
        join_screen_add(join_screen_step)
