"""Sign-up with an emailed confirmation link, password reset through the email backend, and
the reason shown on the sign-in page."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://[^/\s]+(/\S+)")


def test_sign_up_confirms_the_email_before_signing_in(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            "/accounts/signup/",
            {
                "username": "newbie",
                "email": "newbie@example.com",
                "password1": "a fine long passphrase",
                "password2": "a fine long passphrase",
                "next": "/orders/",
            },
        )
    assert page.status_code == 200 and "Check your email" in page.content.decode()
    user = get_user_model().objects.get(username="newbie")
    assert not user.is_active
    # Not confirmed yet: signing in fails.
    assert not client.login(username="newbie", password="a fine long passphrase")

    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newbie@example.com"]
    link = LINK.search(mail.outbox[0].body).group(1)
    page = client.get(link)
    assert page.status_code == 302 and page["Location"] == "/orders/"
    user.refresh_from_db()
    assert user.is_active
    assert client.get("/me").json()["username"] == "newbie"

    # The link is spent.
    client.logout()
    assert client.get(link).status_code == 400


def test_sign_up_says_what_is_wrong_in_plain_words(client, make_shopper):
    get_user_model().objects.create_user("taken", "taken@example.com", "pw")
    page = client.post(
        "/accounts/signup/",
        {"username": "other", "email": "TAKEN@example.com", "password1": "x", "password2": "y"},
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "An account with this email exists already" in html
    assert "password fields didn’t match" in html or "didn't match" in html


def test_password_reset_goes_through_the_email_backend(client):
    get_user_model().objects.create_user("forgetful", "forget@example.com", "old password 1")
    page = client.post("/accounts/password_reset/", {"email": "forget@example.com"})
    assert page.status_code == 302
    assert len(mail.outbox) == 1
    link = LINK.search(mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"},
    )
    assert done.status_code == 302
    assert client.login(username="forgetful", password="a brand new passphrase")


def test_login_page_says_why(client, make_sale):
    sale = make_sale(title="Aurora sneakers")
    html = client.get(f"/accounts/login/?next=/sales/{sale.id}/queue/").content.decode()
    assert "Sign in to join the queue for Aurora sneakers." in html
    assert "Create an account" in html and "Forgot your password?" in html
    html = client.get("/accounts/login/?next=/orders/").content.decode()
    assert "Sign in to see your orders." in html


def test_password_reset_mails_are_limited_per_email_and_per_address(client):
    get_user_model().objects.create_user("target", "target@example.com", "old password 1")
    statuses = [
        client.post("/accounts/password_reset/", {"email": "target@example.com"}).status_code
        for _ in range(5)
    ]
    assert statuses == [302, 302, 302, 429, 429]
    assert len(mail.outbox) == 3  # a stranger cannot flood someone's inbox
    refused = client.post("/accounts/password_reset/", {"email": "target@example.com"})
    assert refused["Retry-After"] == "3600"
    assert "Too many password reset requests" in refused.content.decode()
    # Other emails from the same client: the per-client limit (10 an hour, refused tries
    # included) ends the run after the sixth and above.
    others = [
        client.post("/accounts/password_reset/", {"email": f"x{i}@example.com"}).status_code
        for i in range(6)
    ]
    assert others == [302, 302, 302, 302, 429, 429]


def test_sign_ups_are_limited_per_address(client, django_capture_on_commit_callbacks):
    statuses = []
    for i in range(11):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/accounts/signup/",
                {
                    "username": f"newbie{i}",
                    "email": f"newbie{i}@example.com",
                    "password1": "a long enough passphrase",
                    "password2": "a long enough passphrase",
                },
            )
        statuses.append(response.status_code)
    assert statuses[:10] == [200] * 10 and statuses[10] == 429
    assert len(mail.outbox) == 10
