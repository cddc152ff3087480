from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ocrreview.corpus.tokens import TokenError, do_create_api_token


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="a label to tell tokens apart")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        try:
            self.stdout.write(do_create_api_token(user, options["name"]))
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
