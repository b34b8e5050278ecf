from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView

from apps.core.docs import DocsView, SchemaView
from apps.protection.health import healthz, readyz

urlpatterns = [
    # The herd's routes first (purchase, join, position, now_serving): Django tries the
    # patterns in order, and each one tried costs every request behind it about a microsecond.
    path("api/v1/", include("apps.orders.urls")),
    path("api/v1/", include("apps.waiting_room.urls")),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin, JSON).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("readyz", readyz, name="readyz"),
    path("", include("apps.operations.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("apps.core.urls")),
    path("api/v1/", include("apps.sales.urls")),
    path("api/v1/", include("apps.payments.urls")),
    path("api/v1/", include("apps.protection.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("apps.sales.urls_pages")),
    path("", include("apps.waiting_room.urls_pages")),
    path("", include("apps.orders.urls_pages")),
    path("", include("apps.payments.urls_pages")),
]

# JSON {"error", "detail"} under /api/, a friendly page elsewhere (templates/<status>.html).
handler400 = "apps.core.views.bad_request"
handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.internal_error"
