"""A letter of three pages whose lines are in every state a transcript meets, made out of
order, with a title and texts that are not NFC and hold French typography."""

import pytest

from ocrreview.corpus.models import Document, Line, Page
from tests import factories

# "Lettre à Élise : « brouillon »/1", decomposed, with narrow no-break spaces.
TITLE = "Lettre a\u0300 E\u0301lise\u202f: «\u202fbrouillon\u202f»/1"
STEM = "Lettre à Élise\u202f_ «\u202fbrouillon\u202f»_1"
# q with a combining tilde, which has no precomposed form, and a decomposed é.
TILDE = "q\u0303 dixit, Merci\u202f!"
TEXT = [
    "--- page 1 ---",
    "Monsieur le Préfet,",
    "j’ai l’honneur de vous écrire ;",
    "[unread]",
    "",
    "--- page 2 ---",
    "«\u202fBonjour\u202f»",
    TILDE,
    "[unread]",
    "",
    "--- page 3 ---",
    "[page not segmented]",
]


@pytest.fixture
def letter(letters, model_version):
    document = factories.make_document(letters, TITLE, status=Document.Status.READY)
    # Made backwards: the transcript's order is the pages' and the lines', not the rows'.
    third = factories.make_page(document, 2)
    Page.objects.filter(pk=third.pk).update(status=Page.Status.FAILED, error="kraken died")
    second = factories.make_page(document, 1)
    factories.make_line(second, 2, status=Line.Status.FAILED, error="out of memory")
    factories.make_line(second, 1, text=TILDE, status=Line.Status.REVIEWED)
    factories.make_line(
        second,
        0,
        text="«\u202fBonjour\u202f»",
        status=Line.Status.AUTO_ACCEPTED,
        confidence=0.97,
        model_version=model_version,
    )
    first = factories.make_page(document, 0)
    factories.make_line(first, 2)  # pending
    factories.make_line(
        first,
        1,
        text="j’ai l’honneur de vous e\u0301crire ;",
        status=Line.Status.NEEDS_REVIEW,
        confidence=0.62,
        model_version=model_version,
    )
    factories.make_line(first, 0, text="Monsieur le Préfet,", status=Line.Status.REVIEWED)
    Page.objects.filter(pk__in=[first.pk, second.pk]).update(status=Page.Status.SEGMENTED)
    return document
