from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ocrreview.corpus.tokens import TokenError, do_revoke_api_token


class Command(BaseCommand):
    help = "Revoke a user's API token, named by the start of its key (the tokens page shows it)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "prefix",
            help="the key's first characters (at least 4), or the key; after -- if it starts with -",
        )

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        prefix = options["prefix"].rstrip("…")
        if len(prefix) < 4:
            raise CommandError("Give at least the key's first 4 characters.")
        # The stored prefix is the key's first 8 characters, so a whole key names its token.
        matches = list(user.api_tokens.filter(prefix__startswith=prefix[:8]))
        if len(matches) != 1:
            found = ", ".join(f"{t.name} ({t.prefix}…)" for t in matches) or "none"
            raise CommandError(f"{len(matches)} tokens of {user} start so ({found}); give more.")
        try:
            token = do_revoke_api_token(user, matches[0].pk)
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Revoked {token.name} ({token.prefix}…).")
