"""Pages holding Django forms whose templates place the help texts themselves: each field's
aria-describedby names an element of the page (else a screen reader reads no help text), and no
two elements share an id (the upload page holds two forms with a field of the same name)."""

import lxml.html
import pytest
from django.urls import reverse


def dangling_references(html: bytes) -> tuple[list[str], list[str]]:
    """The ids that several elements share, and the aria-describedby ids no element has."""
    tree = lxml.html.fromstring(html)
    ids = tree.xpath("//@id")
    repeated = sorted({name for name in ids if ids.count(name) > 1})
    missing = [
        name
        for described in tree.xpath("//@aria-describedby")
        for name in described.split()
        if name not in ids
    ]
    return repeated, missing


@pytest.mark.django_db
@pytest.mark.parametrize("view", ["upload", "recognition_progress"])
def test_an_admin_page_names_only_help_texts_it_holds_and_no_id_twice(client, alice, letters, view):
    client.force_login(alice)
    response = client.get(reverse(view, args=[letters.pk]))

    assert response.status_code == 200
    assert b"_helptext" in response.content
    assert dangling_references(response.content) == ([], [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("view", "data", "field"),
    [
        ("import_iiif", {"manifest": "not a manifest", "segmentation": "kraken"}, "iiif_manifest"),
        ("upload", {"segmentation": "kraken"}, "id_files"),
    ],
)
def test_a_refused_upload_or_manifest_says_why_on_its_field(
    client, alice, letters, view, data, field
):
    client.force_login(alice)
    response = client.post(reverse(view, args=[letters.pk]), data)

    assert response.status_code == 400
    tree = lxml.html.fromstring(response.content)
    error = f"{field}_error"
    assert tree.get_element_by_id(error).get("role") == "alert"
    assert error in tree.get_element_by_id(field).get("aria-describedby").split()
    assert dangling_references(response.content) == ([], [])
