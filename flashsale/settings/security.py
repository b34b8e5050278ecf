"""Keys, hosts, security headers, cookies and HSTS."""

from .django import DEBUG, DEMO_MODE
from .env import env
from .keys import refuse_weak_keys

SECRET_KEY = env("SECRET_KEY", default="dev-insecure-secret-key-change-me")
# JWTs: HS256 pinned; keys as "kid:secret,kid:secret"; the first signs, all verify (rotation).
JWT_KEYS = env("JWT_KEYS", default="")
JWT_ISSUER = env("JWT_ISSUER", default="flashsale")
USER_TOKEN_SECONDS = env.int("USER_TOKEN_SECONDS", default=3600)
# With DEBUG off, a default or weak key stops every process here (keys.py says why and how to
# generate good ones).
refuse_weak_keys(debug=DEBUG, secret_key=SECRET_KEY, jwt_keys=JWT_KEYS)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Headers (the Content Security Policy is apps/protection/middleware.py's
# SecurityHeadersMiddleware; these are Django's).
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", default=0 if (DEBUG or DEMO_MODE) else 31536000
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# BEHIND_TLS_PROXY=1: the proxy in front terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)

# Cookies. The demo serves plain HTTP on 127.0.0.1, where Secure cookies and HSTS do not apply.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool(
    "SECURE_COOKIES", default=not (DEBUG or DEMO_MODE)
)
SESSION_COOKIE_HTTPONLY = True
