from django.urls import path

from .views import confirm_email_view, signup_view

urlpatterns = [
    path("signup/", signup_view, name="signup"),
    path("confirm/<str:uidb64>/<str:token>/", confirm_email_view, name="signup-confirm"),
]
