"""ASGI entry point of the ws process (the Procfile's ``ws``, uvicorn): the WebSockets; HTTP
is served by the WSGI workers (this app answers it too, for /healthz)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashsale.settings.base")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import AnonymousUser  # noqa: E402

from flashsale.routing import websocket_urlpatterns  # noqa: E402


class AuthenticatedOnConnect:
    """Channels' auth stack (cookies, session, user) resolves the socket's user once, on
    connect; the routed application then writes to the server's own ``send``. The session
    middleware's wrapper around ``send`` (it saves sessions on HTTP responses, which a
    WebSocket never sends) would otherwise run on every message to every socket. A socket
    without a session cookie (a shopper's page sends its token instead) is anonymous here,
    without the stack's trip to the database thread."""

    def __init__(self, inner):
        self.inner = inner
        self.cookie = settings.SESSION_COOKIE_NAME.encode() + b"="

    async def __call__(self, scope, receive, send):
        cookies = b"; ".join(v for k, v in scope.get("headers", ()) if k == b"cookie")
        if self.cookie not in cookies:
            return await self.inner({**scope, "user": AnonymousUser()}, receive, send)

        async def with_raw_send(resolved_scope, resolved_receive, _wrapped_send):
            return await self.inner(resolved_scope, resolved_receive, send)

        return await AuthMiddlewareStack(with_raw_send)(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthenticatedOnConnect(URLRouter(websocket_urlpatterns))
        ),
    }
)
