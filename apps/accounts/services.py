"""Shopper accounts: sign-up with an emailed confirmation link (Django's own user model and a
signed token, no extra package)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils.encoding import force_bytes, force_str
from django.utils.http import (
    url_has_allowed_host_and_scheme,
    urlsafe_base64_decode,
    urlsafe_base64_encode,
)

from .tokens import email_confirmation_token


def safe_next(next_url: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts=None):
        return next_url
    return "/"


@transaction.atomic
def shopper_sign_up(
    *, username: str, email: str, password: str, site_url: str, next_url: str = "/"
):
    """An inactive account and a confirmation email; the account signs in once confirmed."""
    user = get_user_model().objects.create_user(
        username=username, email=email, password=password, is_active=False
    )
    link = confirmation_link(user, site_url=site_url, next_url=next_url)
    transaction.on_commit(
        lambda: send_mail(
            "Confirm your email for Drop",
            render_to_string("registration/signup_email.txt", {"user": user, "link": link}),
            settings.DEFAULT_FROM_EMAIL,
            [email],
        )
    )
    return user


def confirmation_link(user, *, site_url: str, next_url: str = "/") -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = email_confirmation_token.make_token(user)
    path = f"/accounts/confirm/{uid}/{token}/"
    next_url = safe_next(next_url)
    if next_url != "/":
        path += "?" + urlencode({"next": next_url})
    return site_url.rstrip("/") + path


def shopper_confirm_email(*, uidb64: str, token: str):
    """The account the link confirms (now active), or None for a bad or spent link."""
    try:
        user_id = force_str(urlsafe_base64_decode(uidb64))
        user = get_user_model().objects.get(pk=user_id)
    except (ValueError, TypeError, OverflowError, get_user_model().DoesNotExist):
        return None
    if not email_confirmation_token.check_token(user, token):
        return None
    # Conditional: two clicks on the link activate once.
    get_user_model().objects.filter(pk=user.pk, is_active=False).update(is_active=True)
    user.refresh_from_db()
    return user
