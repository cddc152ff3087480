"""`python manage.py synth_lines N OUT`: synthetic handwritten lines as an imagefolder."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from recognition.synth import cli


class Command(BaseCommand):
    help = "Render N synthetic handwritten text lines into OUT (PNGs and metadata.jsonl)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        metadata = cli.run(
            options["count"],
            options["out"],
            seed=options["seed"],
            max_chars=options["max_chars"],
            held_out=options["held_out"],
        )
        self.stdout.write(str(metadata))
