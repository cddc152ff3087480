"""The Makefile's venv target runs scripts/setup_venv.sh again whenever what it installs
changes: the Python lock, the fonts' npm lock and the Debian packages it installs as root."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def setup_runs(venv: Path, *changed: str) -> bool:
    """Whether `make` would run setup_venv.sh for a venv installed now, with `changed` new."""
    installed = venv / ".installed"
    installed.touch()
    dry_run = ["make", "-n", f"VENV={venv}", str(installed)]
    for path in changed:
        dry_run += ["-W", path]
    out = subprocess.run(dry_run, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return "setup_venv.sh" in out


@pytest.mark.parametrize(
    "changed",
    ["requirements.lock", "recognition/synth/npm-fonts/package-lock.json", "requirements-apt.txt"],
)
def test_an_installed_venv_is_set_up_again_when_what_it_installs_changes(tmp_path, changed):
    assert not setup_runs(tmp_path)
    assert setup_runs(tmp_path, changed)
