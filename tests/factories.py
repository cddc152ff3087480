"""Plain functions that make rows for tests. Images are real PNGs written to MEDIA_ROOT."""

import io

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from ocrreview.corpus.models import Collection, Document, Line, Membership, ModelVersion, Page

User = get_user_model()


def make_user(username: str, *, staff: bool = False, password: str = "password") -> User:
    user = User.objects.create_user(username=username, password=password, is_staff=staff)
    return user


def make_collection(name: str, **kwargs) -> Collection:
    return Collection.objects.create(name=name, **kwargs)


def add_member(user, collection: Collection, role: str = Membership.Role.REVIEWER) -> Membership:
    return Membership.objects.create(user=user, collection=collection, role=role)


def make_model_version(name: str = "tiny", source: str = "/models/tiny", **kwargs) -> ModelVersion:
    return ModelVersion.objects.create(name=name, source=source, **kwargs)


def png_bytes(width: int = 600, height: int = 200, text: str = "") -> bytes:
    image = Image.new("RGB", (width, height), "white")
    if text:
        ImageDraw.Draw(image).text((10, height // 3), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_document(collection: Collection, title: str = "Letter", **kwargs) -> Document:
    return Document.objects.create(collection=collection, title=title, **kwargs)


def make_page(document: Document, index: int = 0, width: int = 600, height: int = 400) -> Page:
    page = Page(document=document, index=index, width=width, height=height)
    page.image.save(f"page-{index}.png", ContentFile(png_bytes(width, height)), save=False)
    page.save()
    return page


def make_line(page: Page, order: int = 0, **kwargs) -> Line:
    top = 10 + order * 40
    kwargs.setdefault("bbox", [10, top, 500, top + 30])
    return Line.objects.create(page=page, order=order, **kwargs)


def make_read_line(
    page: Page,
    order: int,
    readings: list[tuple[str, float]],
    model_version: ModelVersion,
    *,
    confidence: float | None = None,
    status: str = Line.Status.NEEDS_REVIEW,
    tokens: list[dict] | None = None,
) -> Line:
    """A line as recognition leaves it: its n-best readings [(text, share), ...] best first,
    the best one as its text. tokens are the best reading's [{start, end, prob, token}]."""
    from ocrreview.transcription.models import Hypothesis

    best_text, best_share = readings[0]
    line = make_line(
        page,
        order,
        text=best_text,
        status=status,
        confidence=best_share if confidence is None else confidence,
        model_version=model_version,
    )
    Hypothesis.objects.bulk_create(
        Hypothesis(
            line=line,
            model_version=model_version,
            rank=rank,
            text=text,
            logprob=-1.0 - rank,
            confidence=share,
            calibrated_confidence=share,
            share=share,
            tokens=tokens if rank == 0 and tokens is not None else [],
        )
        for rank, (text, share) in enumerate(readings)
    )
    return line


def token_headers(user) -> dict:
    """The API's Authorization header with a key of the user's, made on first use."""
    from ocrreview.corpus.tokens import do_create_api_token

    if not hasattr(user, "test_api_key"):
        user.test_api_key = do_create_api_token(user, "test")
    return {"Authorization": f"Token {user.test_api_key}"}


def post_json(client, url: str, user, body):
    """An API POST of `body` as JSON, with a key of the user's."""
    return client.post(url, body, content_type="application/json", headers=token_headers(user))
