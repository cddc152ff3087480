"""What a web process or Celery worker loads at start: no kraken, torch or transformers, which
only the work that reads a layout, trains or evaluates needs (loading them took every worker
and manage.py subprocess about ten seconds to start and five to stop)."""

import os
import sys

import pytest

from tests.commands import fresh_python

HEAVY = ("kraken", "torch", "transformers")

# A fresh interpreter, as a worker starts: the URLs (every view and what they import) and every
# task module the Celery app finds.
PROBE = f"""
import sys
import django

django.setup()
import ocrreview.urls
from ocrreview.celery import app

app.loader.import_default_modules()
assert "ocrreview.corpus.tasks" in sys.modules, "no task module imported"
print(" ".join(sorted(name for name in {HEAVY!r} if name in sys.modules)))
"""


def test_the_urls_and_task_modules_import_no_model_library() -> None:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "ocrreview.settings"}
    result = fresh_python(PROBE, environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_a_kraken_that_cannot_be_imported_fails_as_itself_not_as_a_bad_file(monkeypatch) -> None:
    """Loaded at the first layout read, kraken missing or broken must not pass for every
    uploaded XML file being unreadable."""
    from ocrreview.corpus import xmlimport

    xmlimport._safe_xml_page.cache_clear()
    monkeypatch.setitem(sys.modules, "kraken.lib.xml", None)  # as a missing module imports
    try:
        with pytest.raises(ImportError):
            xmlimport.parse_layout_xml(b"<PcGts/>", "page.xml")
    finally:
        xmlimport._safe_xml_page.cache_clear()
