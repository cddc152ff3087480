import subprocess
import sys
from io import StringIO
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def run(*args, **options) -> str:
    """What a management command prints."""
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def printed_lines(*args, **options) -> list[str]:
    """The lines a management command prints, such as a benchmark's report."""
    return run(*args, **options).strip().splitlines()


def fresh_python(code: str, environ: dict[str, str]) -> subprocess.CompletedProcess:
    """`code` run by a new interpreter at the repository's root, as a worker or a command the
    README gives starts: nothing this test process has imported or set up carries over."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
