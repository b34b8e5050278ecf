"""Sign-up and email confirmation. Sign-in, sign-out and password reset are Django's own
views (django.contrib.auth.urls) with the shop's templates; reset mails go through the
configured EMAIL_BACKEND."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from .forms import SignUpForm
from .services import safe_next, shopper_confirm_email, shopper_sign_up


def _too_many(request, what: str):
    """The shop's 429 page: these forms send email, so a script must not loop on them."""
    response = render(
        request,
        "429.html",
        {"detail": f"Too many {what} from your address or for this email.", "retry_after": 3600},
        status=429,
    )
    response["Retry-After"] = "3600"
    return response


# Forms that send an email are limited per client address and per email address, so nobody can
# mail-bomb a stranger or make the shop a spam relay (django-ratelimit, fixed windows in the
# shared cache; the client address as the protection middleware reads it).
_EMAIL_FORM_LIMITS = (
    ratelimit(key="ip", rate=settings.EMAIL_FORM_RATE_PER_IP, method="POST", block=False),
    ratelimit(
        key="post:email", rate=settings.EMAIL_FORM_RATE_PER_EMAIL, method="POST", block=False
    ),
)


def email_form_limited(view):
    for limit in _EMAIL_FORM_LIMITS:
        view = limit(view)
    return view


@never_cache
@require_http_methods(["GET", "POST"])
@email_form_limited
def signup_view(request):
    if getattr(request, "limited", False):
        return _too_many(request, "sign-ups")
    next_url = safe_next(request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_url)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        shopper_sign_up(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            site_url=request.build_absolute_uri("/"),
            next_url=next_url,
        )
        return render(
            request, "registration/signup_sent.html", {"email": form.cleaned_data["email"]}
        )
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


@never_cache
@require_http_methods(["GET"])
def confirm_email_view(request, uidb64, token):
    user = shopper_confirm_email(uidb64=uidb64, token=token)
    if user is None:
        return render(request, "registration/signup_confirm_invalid.html", status=400)
    # The link proved the address: sign in with the first configured backend (no password).
    login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    return redirect(safe_next(request.GET.get("next")))


_password_reset = auth_views.PasswordResetView.as_view()


@email_form_limited
def password_reset_view(request, *args, **kwargs):
    if getattr(request, "limited", False):
        return _too_many(request, "password reset requests")
    return _password_reset(request, *args, **kwargs)
