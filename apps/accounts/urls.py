from django.urls import path

from .views import confirm_email_view, password_reset_view, signup_view

urlpatterns = [
    path("signup/", signup_view, name="signup"),
    # Before django.contrib.auth.urls' own: the same view, limited (it sends email).
    path("password_reset/", password_reset_view, name="password_reset"),
    path("confirm/<str:uidb64>/<str:token>/", confirm_email_view, name="signup-confirm"),
]
