from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles import finders
from django.http import FileResponse
from django.urls import include, path
from django.utils import translation
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ocrreview.corpus.invitations import PasswordResetView, SetPasswordView
from ocrreview.corpus.logins import AdminLoginForm, LoginView, PasswordChangeView

# The admin's login page is a second door to every account: it keeps the same limit.
admin.site.login_form = AdminLoginForm


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request):
    """The site's icon where browsers look for one on pages that name none (the Django admin's,
    the API docs): else each of them asked for it and logged "Not Found: /favicon.ico"."""
    return FileResponse(open(finders.find("favicon.svg"), "rb"), content_type="image/svg+xml")


class GeneratedOnce(SchemaGenerator):
    """The public schema, generated once per process. Generating it took a second of CPU (1.2
    s, and 1 to 2 s a request, on the 2-core machine), which every visit of /api/docs/ waited
    for and anyone could ask for again and again. It depends on the code alone: no versioning
    is configured (SchemaView echoes no `version` asked for into it), the app has one language,
    and the schema is served without authentication.

    It is generated without the request that asked first, as `manage.py spectacular` makes
    openapi.yaml: drf-spectacular gives each view a request made from it (its user, Host and
    other headers), and the schema every later visitor gets is not to depend on who that was."""

    schema: dict | None = None

    def get_schema(self, request=None, public=False):
        if GeneratedOnce.schema is None:
            # In the app's language, whatever `lang` the first request asked for.
            with translation.override(settings.LANGUAGE_CODE):
                GeneratedOnce.schema = super().get_schema(request=None, public=True)
        return GeneratedOnce.schema


class SchemaView(SpectacularAPIView):
    generator_class = GeneratedOnce

    def _get_version_parameter(self, request):
        return None


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    # The admin's own page checks the current password with no limit on guesses, for the
    # accounts most worth guessing: the site's page keeps the limits of logins.
    path(
        "admin/password_change/",
        RedirectView.as_view(pattern_name="password_change"),
        name="admin_password_change",
    ),
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", PasswordChangeView.as_view(), name="password_change"),
    # A template of its own: Django's default name is the admin's page too, in the admin's look.
    path(
        "accounts/password/changed/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="registration/password_changed.html"
        ),
        name="password_change_done",
    ),
    # Password resets, and the links of invitations (ocrreview/corpus/invitations.py).
    path("accounts/password/reset/", PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        SetPasswordView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("api/schema/", SchemaView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("", include("ocrreview.corpus.urls")),
    path("", include("ocrreview.transcription.urls")),
    path("", include("ocrreview.review.urls")),
    path("", include("ocrreview.training.urls")),
]

handler400 = "ocrreview.corpus.api_base.refused_request"
handler404 = "ocrreview.corpus.api_base.not_found"
handler500 = "ocrreview.corpus.api_base.server_error"
