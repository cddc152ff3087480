"""The whole loop with S3 storage (moto's server over HTTP) and a worker that shares no disk
with the web side: its own MEDIA_ROOT, working directory and model folder. Upload of a
multi-page document through the API, kraken segmentation and recognition on the worker,
review, an export downloaded through a presigned URL, a training run on the tiny model, and
the new version downloaded and read by the worker. Any code that still builds a path under
MEDIA_ROOT, or expects the other side's files on its disk, fails here."""

import io
import zipfile
from pathlib import Path

import pytest
import requests
from django.urls import reverse
from PIL import Image, ImageDraw, ImageFont

from ocrreview.corpus.models import Document, Line
from ocrreview.review.actions import do_save_line
from ocrreview.training import actions
from ocrreview.training.actions import TrainingParams
from ocrreview.training.exports import ExportOptions
from ocrreview.training.models import DatasetExport, TrainingRun
from ocrreview.transcription.models import Hypothesis
from ocrreview.transcription.services import do_queue_recognition
from tests import factories
from tests.training.conftest import WORDS, make_rendered_page, worker_settings
from tests.training.test_loop import finished_export, finished_run, wait_for
from tests.workers import celery_worker


def multipage_tiff(pages: int) -> bytes:
    """Pages of typed lines, as kraken segments them. Portrait and small: kraken scales a
    page to a fixed height, so a landscape page would cost it several times the pixels."""
    font = ImageFont.load_default(size=30)
    frames = []
    for number in range(pages):
        image = Image.new("L", (420, 640), "white")
        draw = ImageDraw.Draw(image)
        for row in range(4):
            words = " ".join(WORDS[(number + row + k) % len(WORDS)] for k in range(3))
            draw.text((40, 60 + row * 140), words, fill="black", font=font)
        frames.append(image)
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_loop_runs_on_s3_with_a_worker_that_shares_no_disk(
    s3_storage, client, settings, tmp_path, letters, alice, bob, tiny_version
):
    letters.model_version = tiny_version
    letters.nbest_size = 1
    letters.save()
    truth: dict[int, str] = {}
    for number in range(8):
        document = factories.make_document(letters, f"Letter {number}")
        words = [WORDS[(number + k) % len(WORDS)] for k in range(4)]
        for line in make_rendered_page(document, words):
            truth[line.pk] = line.text
    Line.objects.update(text="")
    elsewhere = tmp_path / "worker-host"
    for folder in ("cwd", "media", "models", "var"):
        (elsewhere / folder).mkdir(parents=True)
    headers = factories.token_headers(alice)

    with celery_worker(
        "default,segment,gpu,training",
        name="s3",
        timeout=120,
        cwd=elsewhere / "cwd",
        **{
            **worker_settings(),
            "MEDIA_ROOT": str(elsewhere / "media"),
            "OCRREVIEW_MODELS_DIR": str(elsewhere / "models"),
            "OCRREVIEW_VAR_DIR": str(elsewhere / "var"),
        },
    ):
        uploaded = client.post(
            reverse("api_collection_documents", args=[letters.pk]),
            {"files": [io.BytesIO(multipage_tiff(2))], "segmentation": "kraken"},
            headers=headers,
        )
        assert uploaded.status_code == 201, uploaded.content
        (result,) = uploaded.json()["files"]
        assert result["pages"] == 2
        scanned = Document.objects.get(pk=result["document"])
        do_queue_recognition(Line.objects.filter(pk__in=truth))
        wait_for(
            lambda: (
                Document.objects.get(pk=scanned.pk).status == Document.Status.READY
                and not Line.objects.filter(status=Line.Status.PENDING).exists()
            ),
            300,
            "kraken and recognition on the worker",
        )
        assert scanned.lines.count() >= 6  # eight typed lines on two pages
        assert not scanned.lines.filter(hypotheses__isnull=True).exists()

        for line in Line.objects.filter(pk__in=truth):
            do_save_line(line, bob, truth[line.pk], expected_version=line.version)

        export = actions.do_start_export(
            letters, ExportOptions(seed=1, validation_fraction=0.35), user=alice
        )
        export = finished_export(export)
        assert export.status == DatasetExport.Status.DONE, export.error
        download = client.get(reverse("api_export_download", args=[export.pk]), headers=headers)
        assert download.status_code == 302
        archive = zipfile.ZipFile(
            io.BytesIO(requests.get(download["Location"], timeout=30).content)
        )
        assert "export.json" in archive.namelist()

        params = TrainingParams(
            train_part="all", max_steps=20, batch_size=8, eval_every=10, warmup_steps=2
        )
        run = actions.do_start_training(tiny_version, export, params, user=alice)
        run = finished_run(run)
        assert run.status == TrainingRun.Status.SUCCEEDED, run.error
        child = run.result_model
        assert child.source.startswith(f"storage:models/{child.name}-")
        if not run.promoted:
            actions.do_override_promotion(run, actor=alice, reason="read the S3 copy")
        letters.refresh_from_db()
        assert (
            actions.do_rerecognize_unreviewed(letters, child, actor=None) == scanned.lines.count()
        )
        wait_for(
            lambda: (
                Hypothesis.objects.filter(line__document=scanned, model_version=child).count()
                >= scanned.lines.count()
            ),
            180,
            "the worker reading with the new version",
        )

    listed = s3_storage.client().list_objects_v2(Bucket=settings.OCRREVIEW_S3_BUCKET)
    names = {item["Key"] for item in listed["Contents"]}
    stored = child.source.removeprefix("storage:")
    assert export.path in names and f"{stored}/SHA256SUMS" in names
    # Nothing went to either side's disk but the worker's cache of the new version.
    assert files_under(Path(settings.MEDIA_ROOT)) == []
    assert files_under(elsewhere / "media") == []
    cached = files_under(elsewhere / "models" / "cache")
    assert any(p.name == "model.safetensors" for p in cached)
