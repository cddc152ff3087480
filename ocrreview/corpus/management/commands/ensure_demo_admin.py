import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo admin account (once) and print its password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        password_file = settings.VAR_DIR / "demo_admin_password"
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            get_user_model().objects.create_superuser(username, password=password)
            password_file.write_text(password)
            password_file.chmod(0o600)
        elif password_file.exists() and user.check_password(password_file.read_text()):
            password = password_file.read_text()
        else:
            # Changed by its owner since, or made elsewhere: theirs to keep, on every start.
            self.stdout.write(
                f"The account {username!r} exists and keeps the password it was given "
                f"(`python manage.py changepassword {username}` sets a new one)"
            )
            return
        self.stdout.write(f"Log in as {username!r} with password {password!r}")
