"""The README's API example, run as it is printed: a subprocess against the live server, with
real Celery workers that segment the PDF with kraken and read it with the starter model, and
a person's answer typed on its standard input."""

import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import redis
from PIL import Image

from ocrreview.corpus.models import Membership
from ocrreview.corpus.tokens import do_create_api_token
from ocrreview.review.actions import do_save_line
from ocrreview.review.models import Correction
from ocrreview.training.models import DatasetExport
from tests import factories
from tests.workers import celery_worker

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "recognition" / "starter_model"
# The demo's typed letter, the page the starter model reads best.
SCAN = ROOT / "demo" / "lathrop" / "SC0033B_s4_b01_f14_i081.jpg"
pytestmark = pytest.mark.slow


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- the API example.*?-->\n```python\n(.*?)```", readme, re.S)
    assert found, "the README lost its API example"
    return found.group(1)


@pytest.mark.django_db(transaction=True)
def test_the_readme_api_example_runs_against_live_server_and_workers(
    live_server, tmp_path, settings
):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    settings.OCRREVIEW_MODEL = str(STARTER)
    alice = factories.make_user("alice")
    letters = factories.make_collection("Letters")
    factories.add_member(alice, letters, Membership.Role.ADMIN)
    # The collection's earlier work: the first export freezes an evaluation split, which
    # takes reviewed lines of two documents at least.
    earlier = factories.make_page(factories.make_document(letters, "Earlier letter"))
    reviewed = factories.make_line(earlier, text="Yours truly,")
    do_save_line(reviewed, alice, "Yours truly,", expected_version=reviewed.version)
    # At the scan's own resolution, so ingestion renders it back at its size.
    Image.open(SCAN).save(tmp_path / "letter.pdf", "PDF", resolution=settings.OCRREVIEW_PDF_DPI)
    (tmp_path / "example.py").write_text(readme_example(), encoding="utf-8")
    env = {
        "OCRREVIEW_MODEL": str(STARTER),
        "OCRREVIEW_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
    }
    with celery_worker("default,segment,gpu", name="readme", timeout=120, **env):
        finished = subprocess.run(
            [sys.executable, "example.py", "letter.pdf"],
            cwd=tmp_path,
            env={
                **os.environ,
                "OCRREVIEW_URL": live_server.url,
                "OCRREVIEW_COLLECTION": str(letters.pk),
                "OCRREVIEW_TOKEN": do_create_api_token(alice, "readme"),
            },
            input="Dear Sir:-\n",
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    out = finished.stdout
    read = int(re.search(r"(\d+) lines read, 0 failed", out).group(1))
    assert read >= 10  # the letter has 15 lines
    assert re.search(r"[1-9]\d* lines under 0\.9 confidence", out)
    correction = Correction.objects.exclude(line=reviewed).get()
    assert correction.text_after == "Dear Sir:-" and correction.user == alice
    assert f"The model read: {correction.text_before!r}" in out
    export = DatasetExport.objects.get()
    assert export.status == DatasetExport.Status.DONE
    with zipfile.ZipFile(io.BytesIO((tmp_path / "export.zip").read_bytes())) as archive:
        names = archive.namelist()
    assert "export.json" in names and any(n.startswith("page/") for n in names)
    assert sum(export.counts.get(split, 0) for split in ("train", "validation", "test")) == 2
