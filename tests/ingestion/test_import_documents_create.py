"""`import_documents --create` makes a collection through do_create_collection, as the New
collection page does: with the admin --admin names, its creation in the history."""

import pytest
from django.core.management import CommandError, call_command

from ocrreview.corpus.models import Collection, CollectionEvent, Membership
from tests import factories
from tests.ingestion import files


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a.png").write_bytes(files.png())
    return tmp_path


def run(folder, *options: str) -> None:
    call_command("import_documents", str(folder), "--collection", "New", *options)


@pytest.mark.django_db
def test_the_new_collection_has_its_admin_and_its_creation_in_the_history(folder, dave, staff):
    run(folder, "--create", "--admin", "dave", "--user", "staff")
    created = Collection.objects.get(name="New")
    assert created.documents.count() == 1
    membership = Membership.objects.get(collection=created)
    assert (membership.user, membership.role) == (dave, Membership.Role.ADMIN)
    events = CollectionEvent.objects.filter(collection=created).order_by("id")
    assert [(e.event_type, e.acting_user) for e in events] == [
        ("collection_created", staff),
        ("member_added", staff),
    ]


@pytest.mark.django_db
def test_without_a_user_the_system_created_it(folder, dave):
    run(folder, "--create", "--admin", "dave")
    event = CollectionEvent.objects.filter(event_type="collection_created").get()
    assert event.acting_user is None and event.extra_data["actor"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--create"], "--create needs --admin USERNAME"),
        (["--create", "--admin", "nobody"], "No account is named “nobody”"),
        (["--create", "--admin", "eve"], "deactivated"),
        (["--create", "--admin", "dave", "--user", "nobody"], "No user named 'nobody'"),
        ([], "No collection named 'New'"),
    ],
)
def test_refused_creations_make_nothing(folder, dave, options, message):
    eve = factories.make_user("eve")
    eve.is_active = False
    eve.save()
    with pytest.raises(CommandError, match=message):
        run(folder, *options)
    assert not Collection.objects.filter(name="New").exists()
    assert not CollectionEvent.objects.exists()


@pytest.mark.django_db
def test_a_name_the_form_refuses_makes_nothing(folder, dave):
    with pytest.raises(CommandError, match="at most 200 characters"):
        call_command(
            "import_documents",
            str(folder),
            "--collection",
            "x" * 201,
            "--create",
            "--admin",
            "dave",
        )
    assert not Collection.objects.exists()


@pytest.mark.django_db
def test_run_again_keeps_the_collection_and_its_members(folder, dave, alice, capsys):
    run(folder, "--create", "--admin", "dave")
    run(folder, "--create", "--admin", "alice")
    created = Collection.objects.get(name="New")
    assert list(created.members.all()) == [dave]
    assert created.documents.count() == 1
    assert "--admin changes none of its members" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_name_typed_with_unmeant_characters_finds_the_collection_it_made(folder, dave):
    # Stored as "Minutes": a second run looks it up by that, and goes on.
    for _ in range(2):
        call_command(
            "import_documents",
            str(folder),
            "--collection",
            "Minutes\t",
            "--create",
            "--admin",
            "dave",
        )
    assert Collection.objects.get(name="Minutes").documents.count() == 1
    call_command("import_documents", str(folder), "--collection", "Min\u202eutes")
