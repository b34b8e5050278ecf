from django.urls import path

from .apis import TokenCreateApi

urlpatterns = [
    path("auth/token", TokenCreateApi.as_view(), name="auth-token"),
]
