"""Fixtures for the training app: a tiny real model, and pages whose lines are rendered text,
so a model can actually learn to read them."""

import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw, ImageFont

from ocrreview import storage
from ocrreview.corpus.models import Line, Page
from ocrreview.review.models import Correction
from ocrreview.training import actions
from ocrreview.training.actions import TrainingParams
from ocrreview.training.models import DatasetExport, TrainingRun
from tests import factories
from tests.tiny_model import build_tiny_model

# A small alphabet, so a tiny model memorises it in a few hundred CPU steps.
WORDS = ["ab", "ba", "cab", "abc", "bca", "cc", "aa", "bb"]
# The export page's form as a browser posts it with its defaults.
EXPORT_FORM = {
    "min_confidence": "0.95",
    "unit": "document",
    "seed": "0",
    "validation_fraction": "0.1",
    "test_fraction": "0.1",
    "formats": ["imagefolder"],
}
LINE_BOX = (100, 40)  # width, height of a line: near-square, as the tiny model sees 32x32


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts=WORDS)


# A random model rambles until max_new_tokens; the words here need a handful.
MAX_NEW_TOKENS = 24
# The tests' frozen splits are a document or two.
GATE_MIN_LINES = 4


@pytest.fixture(autouse=True)
def _training_settings(settings, tmp_path):
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    settings.OCRREVIEW_MAX_NEW_TOKENS = MAX_NEW_TOKENS
    settings.OCRREVIEW_GATE_MIN_LINES = GATE_MIN_LINES


@contextmanager
def export_zip(export: DatasetExport) -> Iterator[zipfile.ZipFile]:
    """The export's zip, read from storage as the training task reads it."""
    with storage.local_copy(export.path) as local, zipfile.ZipFile(local) as archive:
        yield archive


def export_bytes(export: DatasetExport) -> bytes:
    with default_storage.open(export.path, "rb") as handle:
        return handle.read()


def worker_settings() -> dict[str, str]:
    """What a worker process must share with the test's settings."""
    from django.conf import settings

    return {
        "OCRREVIEW_MODELS_DIR": str(settings.OCRREVIEW_MODELS_DIR),
        "OCRREVIEW_MAX_NEW_TOKENS": str(MAX_NEW_TOKENS),
        "OCRREVIEW_GATE_MIN_LINES": str(GATE_MIN_LINES),
    }


@pytest.fixture
def tiny_version(db, tiny_model_dir):
    return factories.make_model_version(name="tiny", source=str(tiny_model_dir), status="active")


def render_page(texts: list[str]) -> tuple[bytes, list[list[int]]]:
    """A page with one rendered word per line; returns the PNG and each line's bbox."""
    width, height = LINE_BOX[0] + 20, 10 + len(texts) * (LINE_BOX[1] + 10)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=26)
    boxes = []
    for order, text in enumerate(texts):
        top = 10 + order * (LINE_BOX[1] + 10)
        box = [10, top, 10 + LINE_BOX[0], top + LINE_BOX[1]]
        draw.text((box[0] + 6, top + 4), text, fill="black", font=font)
        boxes.append(box)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), boxes


def make_rendered_page(document, texts: list[str], index: int = 0, **line_fields) -> list[Line]:
    png, boxes = render_page(texts)
    page = Page(document=document, index=index, width=LINE_BOX[0] + 20, height=1)
    image = Image.open(io.BytesIO(png))
    page.width, page.height = image.size
    page.image.save(f"page-{index}.png", ContentFile(png), save=False)
    page.save()
    return [
        factories.make_line(page, order, bbox=box, text=text, **line_fields)
        for order, (text, box) in enumerate(zip(texts, boxes, strict=True))
    ]


def mark_reviewed(lines: list[Line], user) -> None:
    """Ground truth made outside the review UI (tests of the export alone)."""
    for line in lines:
        line.status = Line.Status.REVIEWED
        line.version += 1
        line.save()
        Correction.objects.create(
            line=line,
            user=user,
            action=Correction.Action.ACCEPT,
            text_before=line.text,
            text_after=line.text,
            line_version=line.version,
        )


@pytest.fixture
def reviewed_letters(letters, bob):
    """Six documents of the Letters collection, one page of four reviewed lines each."""
    lines = []
    for number in range(6):
        document = factories.make_document(letters, f"Letter {number}")
        words = [WORDS[(number + k) % len(WORDS)] for k in range(4)]
        lines += make_rendered_page(document, words, status=Line.Status.NEEDS_REVIEW)
    mark_reviewed(lines, bob)
    return lines


def render_line(text: str) -> Image.Image:
    image = Image.new("RGB", LINE_BOX, "white")
    ImageDraw.Draw(image).text((6, 4), text, fill="black", font=ImageFont.load_default(size=26))
    return image


@pytest.fixture
def line_folder(tmp_path):
    """An image folder as published HTR sets ship it: one PNG a line, metadata.jsonl with the
    text, the page it comes from and its split (test: pages 6 and 7)."""
    folder = tmp_path / "lines"
    folder.mkdir()
    rows = []
    for page in range(8):
        for k in range(4):
            text = WORDS[(page + k) % len(WORDS)]
            file_name = f"{page:02d}-{k}.png"
            render_line(text).save(folder / file_name)
            split = "test" if page >= 6 else "train"
            rows.append({"file_name": file_name, "text": text, "page": f"p{page}", "split": split})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


@pytest.fixture
def done_export(letters, alice, reviewed_letters):
    from tests.training.test_exports import export_now

    return export_now(letters, alice)


@pytest.fixture
def finished_run(letters, alice, tiny_version, done_export):
    """A run the gate kept inactive, made with the ORM: the pages need its rows, not a model
    (test_training_run trains real ones). Its confidences are calibrated, as its export's
    validation lines would calibrate them."""
    child = factories.make_model_version(
        name="tiny-run",
        source="/models/tiny-run",
        parent=tiny_version,
        calibration={"method": "platt-logit", "a": 1.2, "b": -0.3},
        metrics={
            "cer": 0.61234,
            "wer": 0.9,
            "lines": 4,
            "eval_split": 1,
            "parent": {"name": "tiny", "cer": 0.51234, "wer": 0.8},
        },
    )
    run = succeeded_run(
        child,
        done_export,
        alice,
        history=[
            {"event": "step", "step": 10, "total_steps": 20, "loss": 2.5},
            {"event": "eval", "step": 20, "cer": 0.7},
        ],
    )
    actions.do_apply_gate(run)
    return run


def succeeded_run(child, export, user, **fields) -> TrainingRun:
    """A run that made `child` from its parent, made with the ORM, before the gate's verdict."""
    return TrainingRun.objects.create(
        base_model=child.parent,
        dataset=export,
        result_model=child,
        status=TrainingRun.Status.SUCCEEDED,
        params=asdict(TrainingParams()),
        created_by=user,
        **fields,
    )
