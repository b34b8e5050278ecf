from django.apps import AppConfig


class WaitingRoomConfig(AppConfig):
    name = "apps.waiting_room"
    label = "waiting_room"
