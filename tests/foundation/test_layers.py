"""Dependencies run downwards: the ML engine knows no Django, and each app imports only the
apps below it (corpus at the bottom, then transcription, review, training)."""

import ast
import os
from pathlib import Path

import pytest

from tests.commands import fresh_python

ROOT = Path(__file__).resolve().parent.parent.parent
APPS = ["corpus", "transcription", "review", "training"]


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """Every module imported by each file below `folder`, top-level or inside a function."""
    found = {}
    for path in folder.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        modules = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module)
                modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = modules
    return found


def test_the_engine_imports_nothing_of_django_or_the_apps() -> None:
    offending = {
        path: sorted(m for m in modules if m.split(".")[0] in ("django", "ocrreview"))
        for path, modules in imported_modules(ROOT / "recognition").items()
    }
    assert {path: m for path, m in offending.items() if m} == {}


@pytest.mark.parametrize("app", APPS)
def test_an_app_imports_only_the_apps_below_it(app: str) -> None:
    above = APPS[APPS.index(app) + 1 :]
    offending = {
        path: sorted(m for m in modules if m.startswith("ocrreview.") and m.split(".")[1] in above)
        for path, modules in imported_modules(ROOT / "ocrreview" / app).items()
    }
    assert {path: m for path, m in offending.items() if m} == {}


def test_the_benchmarks_import_without_django_set_up() -> None:
    """The model card's commands run them as plain scripts; a model imported at module level
    anywhere below them fails them with AppRegistryNotReady."""
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # One interpreter for both: each start imports torch and transformers again.
    result = fresh_python("import bench.demo_pages, bench.training_data", environment)
    assert result.returncode == 0, result.stderr
