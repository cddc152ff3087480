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
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user and password_file.exists() and user.check_password(password_file.read_text()):
            password = password_file.read_text()
        else:
            password = secrets.token_urlsafe(12)
            user = user or User(username=username)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            password_file.write_text(password)
            password_file.chmod(0o600)
        self.stdout.write(f"Log in as {username!r} with password {password!r}")
