import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ocrreview.corpus.models import Line
from ocrreview.review.models import AppendOnlyError, Correction
from ocrreview.transcription.models import Hypothesis
from tests import factories


@pytest.fixture
def line(letters):
    document = factories.make_document(letters)
    return factories.make_line(factories.make_page(document))


def hypothesis(line, model_version, rank, text="Dear Sir"):
    return Hypothesis(
        line=line,
        model_version=model_version,
        rank=rank,
        text=text,
        logprob=-0.5,
        confidence=0.6,
        share=0.7,
    )


def test_line_takes_its_collection_and_document_from_its_page(line, letters):
    assert line.collection == letters
    assert line.document == line.page.document


def test_hypotheses_are_unique_per_line_model_and_rank(line, model_version):
    hypothesis(line, model_version, 0).save()
    hypothesis(line, model_version, 1, "Dear Sr").save()
    with pytest.raises(IntegrityError), transaction.atomic():
        hypothesis(line, model_version, 0, "Deer Sir").save()
    # Re-running recognition with bulk_create(ignore_conflicts) adds nothing twice.
    Hypothesis.objects.bulk_create(
        [hypothesis(line, model_version, 0), hypothesis(line, model_version, 1)],
        ignore_conflicts=True,
    )
    assert Hypothesis.objects.filter(line=line).count() == 2


def test_another_model_version_keeps_the_old_hypotheses(line, model_version):
    newer = factories.make_model_version("tiny-2", parent=model_version)
    hypothesis(line, model_version, 0).save()
    hypothesis(line, newer, 0).save()
    assert Hypothesis.objects.filter(line=line).count() == 2


def test_corrections_are_append_only(line, bob):
    correction = Correction.objects.create(
        line=line,
        user=bob,
        action=Correction.Action.EDIT,
        text_before="Dear Sr",
        text_after="Dear Sir",
        line_version=2,
    )
    correction.text_after = "rewritten history"
    with pytest.raises(AppendOnlyError):
        correction.save()
    with pytest.raises(AppendOnlyError):
        correction.delete()
    with pytest.raises(AppendOnlyError):
        Correction.objects.filter(pk=correction.pk).update(text_after="x")
    with pytest.raises(AppendOnlyError):
        Correction.objects.filter(pk=correction.pk).delete()
    correction.refresh_from_db()
    assert correction.text_after == "Dear Sir"


def test_the_database_refuses_to_rewrite_corrections(line, bob):
    correction = Correction.objects.create(
        line=line,
        user=bob,
        action=Correction.Action.ACCEPT,
        text_after="Dear Sir",
        line_version=2,
    )
    for sql in (
        "UPDATE review_correction SET text_after = 'x' WHERE id = %s",
        "DELETE FROM review_correction WHERE id = %s",
    ):
        with (
            pytest.raises(Exception, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [correction.pk])
    assert Correction.objects.get(pk=correction.pk).text_after == "Dear Sir"


def test_a_line_with_history_cannot_be_deleted(line, bob):
    Correction.objects.create(
        line=line, user=bob, action=Correction.Action.ACCEPT, text_after="x", line_version=2
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        line.delete()
    assert Line.objects.filter(pk=line.pk).exists()


def test_a_claim_needs_both_holder_and_expiry(line, bob):
    with pytest.raises(IntegrityError), transaction.atomic():
        Line.objects.filter(pk=line.pk).update(claimed_by=bob)
    Line.objects.filter(pk=line.pk).update(claimed_by=bob, claimed_until=timezone.now())


def test_collection_policy_is_checked_by_the_database(letters):
    with pytest.raises(IntegrityError), transaction.atomic():
        type(letters).objects.filter(pk=letters.pk).update(confidence_threshold=1.2)
    with pytest.raises(IntegrityError), transaction.atomic():
        type(letters).objects.filter(pk=letters.pk).update(nbest_size=0)
