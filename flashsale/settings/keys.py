"""Refuse to run in production on a default, placeholder or short signing key.

With DEBUG off, ``SECRET_KEY`` signs sessions, CSRF tokens and the page cookies, and the
``JWT_KEYS`` secrets sign every shopper and admission token (or ``SECRET_KEY`` does, when
``JWT_KEYS`` is empty). A key anyone can guess lets them forge a token that buys. So a key is
*weak* when it is:

- shorter than 50 characters (``SECRET_KEY``, as Django's own deploy check) or 32 characters
  (a JWT secret: HS256 wants at least the hash's 256 bits);
- made of fewer than 10 distinct characters ("aaaa…", "abab…");
- a known default: this project's old default, Django's ``django-insecure-`` keys, words
  such as ``secret``, ``password``, ``changeme``;
- a placeholder: it contains ``change-me``, ``changeme``, ``insecure``, ``placeholder``,
  ``replace``, ``example``, ``your-``, ``xxxx``, or looks like ``<…>`` / ``${…}``.
"""

from __future__ import annotations

KNOWN_DEFAULTS = {
    "dev-insecure-secret-key-change-me",  # this project's default until DEBUG went off
    "change-me",
    "changeme",
    "secret",
    "secret-key",
    "secretkey",
    "password",
    "django",
    "flashsale",
    "test",
}
PLACEHOLDER_WORDS = (
    "change-me",
    "change_me",
    "changeme",
    "insecure",
    "placeholder",
    "replace",
    "example",
    "your-",
    "your_",
    "xxxx",
)
SECRET_KEY_MIN_LENGTH = 50
JWT_SECRET_MIN_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 10

HOW_TO_FIX = (
    "Generate keys with:\n"
    "  SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(64))')\"\n"
    "  JWT_KEYS=\"k1:$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\"\n"
    "and set them in the environment (never commit them). `make run` generates its own into "
    "var/demo.env; DEBUG=1 skips this check on a development machine."
)


def weakness(value: str, *, min_length: int) -> str | None:
    """Why ``value`` is not a safe signing key, or None when it is."""
    lowered = value.strip().lower()
    if not value:
        return "it is empty"
    if lowered in KNOWN_DEFAULTS or lowered.startswith("django-insecure"):
        return "it is a published default"
    if any(word in lowered for word in PLACEHOLDER_WORDS) or (
        lowered.startswith(("<", "${")) and lowered.endswith((">", "}"))
    ):
        return "it is a placeholder"
    if len(value) < min_length:
        return f"it is shorter than {min_length} characters"
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return f"it has fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    return None


def key_problems(*, secret_key: str, jwt_keys: str) -> list[str]:
    problems = []
    reason = weakness(secret_key, min_length=SECRET_KEY_MIN_LENGTH)
    if reason:
        problems.append(f"SECRET_KEY is weak: {reason}.")
    for pair in (p.strip() for p in jwt_keys.split(",") if p.strip()):
        kid, _, secret = pair.partition(":")
        if not kid or not secret:
            problems.append("JWT_KEYS entries look like kid:secret (comma-separated).")
            continue
        reason = weakness(secret, min_length=JWT_SECRET_MIN_LENGTH)
        if reason:
            problems.append(f"JWT_KEYS key {kid!r} is weak: {reason}.")
    return problems


def refuse_weak_keys(*, debug: bool, secret_key: str, jwt_keys: str) -> None:
    """Raise ImproperlyConfigured (every process refuses to start) when DEBUG is off and a
    signing key is weak."""
    if debug:
        return
    problems = key_problems(secret_key=secret_key, jwt_keys=jwt_keys)
    if problems:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "DEBUG is off and a signing key is not safe to run with:\n  "
            + "\n  ".join(problems)
            + "\n"
            + HOW_TO_FIX
        )
