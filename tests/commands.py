from io import StringIO

from django.core.management import call_command


def run(*args, **options) -> str:
    """What a management command prints."""
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def printed_lines(*args, **options) -> list[str]:
    """The lines a management command prints, such as a benchmark's report."""
    return run(*args, **options).strip().splitlines()
