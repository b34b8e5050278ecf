"""The email-confirmation link's token: Django's signed, expiring password-reset token with a
salt of its own, so a reset link can never confirm an account and the other way round."""

from django.contrib.auth.tokens import PasswordResetTokenGenerator


class EmailConfirmationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "apps.accounts.tokens.EmailConfirmationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        # is_active is in the hash: once the account is confirmed, the link is spent.
        return f"{user.pk}{user.is_active}{user.email}{timestamp}"


email_confirmation_token = EmailConfirmationTokenGenerator()
