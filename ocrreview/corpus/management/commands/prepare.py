from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "What `make run` does before serving: say what this install uses, migrate, collect "
        "static files, create the demo admin and load the demo collection. One process, since "
        "each step would otherwise import torch and kraken again."
    )

    def handle(self, *args, **options):
        steps = [
            ("Configuration", "describe_setup", {}),
            ("Database migrations", "migrate", {"interactive": False, "verbosity": 0}),
            ("Static files", "collectstatic", {"interactive": False, "verbosity": 0}),
            ("Demo admin account", "ensure_demo_admin", {}),
            ("Demo collection", "load_demo", {}),
        ]
        for title, command, step_options in steps:
            self.stdout.write(f"== {title}")
            call_command(command, stdout=self.stdout, **step_options)
