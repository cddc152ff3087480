"""The demo admin account that `make run` prepares: made once, its password printed at every
start, and left alone once its owner changed it."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


def ensure_demo_admin() -> str:
    out = StringIO()
    call_command("ensure_demo_admin", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_demo_admin_is_made_once_and_its_password_printed_at_every_start(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = ensure_demo_admin()
    password = (tmp_path / "demo_admin_password").read_text()
    assert first == f"Log in as 'admin' with password {password!r}\n"
    assert ensure_demo_admin() == first
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)


@pytest.mark.django_db
@pytest.mark.parametrize("password_file", ["kept", "gone"])
def test_a_password_its_owner_changed_stands(settings, tmp_path, password_file):
    settings.VAR_DIR = tmp_path
    ensure_demo_admin()
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("the archivist's own")
    admin.save()
    if password_file == "gone":
        (tmp_path / "demo_admin_password").unlink()
    assert "keeps the password it was given" in ensure_demo_admin()
    admin.refresh_from_db()
    assert admin.check_password("the archivist's own") and admin.is_superuser
