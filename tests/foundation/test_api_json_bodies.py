"""JSON bodies the database could not store: valid JSON whose strings hold a lone surrogate
escape or a NUL, and JSON nested past the parser's depth. Each is a 400 naming the problem,
whichever form or serializer the endpoint reads with, and nothing is stored."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Collection, Document
from tests.factories import token_headers


def send(client, user, method: str, url: str, body: dict | str):
    """The test client writes a dict as JSON with every non-ASCII character escaped, so a
    lone surrogate goes as the \\ud800 a client's JSON library would send."""
    return getattr(client, method)(
        url, body, headers=token_headers(user), content_type="application/json"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("character", ["\ud800", "\x00"], ids=["lone surrogate", "NUL"])
def test_collection_settings_holding_what_no_text_may_hold_are_a_400(
    client, alice, letters, character
):
    url = reverse("api_collection", args=[letters.pk])
    response = send(client, alice, "patch", url, {"description": f"Letters {character}"})
    assert response.status_code == 400, response.content
    assert "a string holds" in response.json()["error"]
    assert Collection.objects.get(pk=letters.pk).description == letters.description


@pytest.mark.django_db
def test_a_lone_surrogate_in_an_iiif_url_or_in_a_key_is_a_400(client, alice, letters):
    url = reverse("api_iiif", args=[letters.pk])
    for body in (
        {"manifest": "https://example.org/m\udfff.json"},
        {"manifest": "https://example.org/m.json", "segmentation\ud800": "kraken"},
    ):
        response = send(client, alice, "post", url, body)
        assert response.status_code == 400, response.content
        assert "lone surrogate" in response.json()["error"]
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_a_surrogate_pair_is_the_character_it_encodes(client, alice, letters):
    body = '{"description": "Letters \\ud83d\\udcdc"}'
    response = send(client, alice, "patch", reverse("api_collection", args=[letters.pk]), body)
    assert response.status_code == 200, response.content
    assert Collection.objects.get(pk=letters.pk).description == "Letters \N{SCROLL}"


@pytest.mark.django_db
def test_json_nested_past_the_parsers_depth_is_a_400(client, alice, letters):
    body = '{"description": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = send(client, alice, "patch", reverse("api_collection", args=[letters.pk]), body)
    assert response.status_code == 400, response.content
    assert "nested too deeply" in response.json()["error"]


@pytest.mark.django_db
def test_json_nested_as_deep_as_the_parser_reads_is_checked_to_the_bottom(client, alice, letters):
    url = reverse("api_collection", args=[letters.pk])
    body = '{"description": ' + "[" * 600 + '"\\ud800"' + "]" * 600 + "}"
    response = send(client, alice, "patch", url, body)
    assert response.status_code == 400, response.content
    assert "lone surrogate" in response.json()["error"]


@pytest.mark.django_db
def test_a_body_past_the_upload_limit_is_a_413_in_the_apis_shape(client, alice, letters, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"description": "x" * 2000}
    response = send(client, alice, "patch", reverse("api_collection", args=[letters.pk]), body)
    assert response.status_code == 413, response.content
    assert response.json() == {"error": "The request body is over 1,000 bytes."}
    assert Collection.objects.get(pk=letters.pk).description == letters.description


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["corrections", "claim", "recognize", "iiif import"])
def test_a_key_that_is_no_field_of_the_request_is_a_400_naming_it(
    client, alice, letters, model_version, endpoint
):
    """Serializers drop what they do not know: a misspelt `hypothesis` would be saved as no
    reading, an `exlude` claim the line handed back. The forms' endpoints refuse it."""
    from ocrreview.corpus.models import Line
    from ocrreview.review.models import Correction
    from ocrreview.transcription.models import RecognitionRequest
    from tests import factories

    line = factories.make_line(factories.make_page(factories.make_document(letters)), 0)
    url, body = {
        "corrections": (
            reverse("api_line_corrections", args=[line.pk]),
            {"text": "Dear Sir", "expected_version": line.version},
        ),
        "claim": (reverse("api_claim", args=[letters.pk]), {"order": "reading"}),
        "recognize": (
            reverse("api_recognize", args=[letters.pk]),
            {"model_version": model_version.pk},
        ),
        "iiif import": (
            reverse("api_iiif", args=[letters.pk]),
            {"manifest": "https://example.org/m.json"},
        ),
    }[endpoint]
    response = send(client, alice, "post", url, {**body, "hypotesis": 1})
    assert response.status_code == 400, response.content
    assert response.json() == {
        "error": "Invalid request.",
        "fields": {"hypotesis": [{"message": "not a field of this request", "code": "invalid"}]},
    }
    assert not Correction.objects.exists() and not RecognitionRequest.objects.exists()
    assert Line.objects.get(pk=line.pk).claimed_by is None


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["settings", "find and replace", "export", "training run"])
def test_an_integer_past_a_floats_range_is_a_400_where_a_number_is_read(
    client, alice, letters, endpoint
):
    """JSON's integers have no bound, and a form's float() of one past 1.8e308 raised an
    OverflowError: a 500, where a query string's or a form post's digits read as infinity."""
    from ocrreview.training.models import DatasetExport, TrainingRun

    huge = 10**400
    method, url, body, field = {
        "settings": (
            "patch",
            reverse("api_collection", args=[letters.pk]),
            {"confidence_threshold": huge},
            "confidence_threshold",
        ),
        "find and replace": (
            "post",
            reverse("api_replace", args=[letters.pk]),
            {"q": "Sir", "replacement": "Madam", "preview": True, "confidence_below": huge},
            "confidence_below",
        ),
        "export": (
            "post",
            reverse("api_exports", args=[letters.pk]),
            {"min_confidence": huge},
            "min_confidence",
        ),
        "training run": (
            "post",
            reverse("api_training_runs", args=[letters.pk]),
            {"learning_rate": -huge},
            "learning_rate",
        ),
    }[endpoint]
    response = send(client, alice, method, url, body)
    assert response.status_code == 400, response.content
    assert response.json()["fields"][field] == [
        {"message": "a string, a number of at most 1.8e+308 or null", "code": "invalid"}
    ]
    assert (
        Collection.objects.get(pk=letters.pk).confidence_threshold == letters.confidence_threshold
    )
    assert not DatasetExport.objects.exists() and not TrainingRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value", [False, True])
def test_true_or_false_where_a_number_is_read_is_a_400(client, alice, letters, value):
    """False read as 0.0 would accept every line unseen."""
    url = reverse("api_collection", args=[letters.pk])
    response = send(client, alice, "patch", url, {"confidence_threshold": value})
    assert response.status_code == 400, response.content
    assert "confidence_threshold" in response.json()["fields"]
    assert (
        Collection.objects.get(pk=letters.pk).confidence_threshold == letters.confidence_threshold
    )
