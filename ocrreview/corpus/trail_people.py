"""Whose rows of a collection's trails (its corrections, its events) its coordinators may look
for, and whom a form's "Who" menu offers, on the pages and in the API alike."""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, QuerySet

from ocrreview.corpus.models import Collection, Membership


def members_or(collection: Collection, rows: QuerySet) -> QuerySet:
    """The collection's members, and anyone with `rows` in its trail (rows of the person
    OuterRef("pk")): a former member, site staff. For a form to accept a person chosen by id;
    never to list, which would test every user of the site."""
    member = Membership.objects.filter(user=OuterRef("pk"), collection=collection)
    return get_user_model().objects.filter(Exists(member) | Exists(rows))


def offer_members(form: forms.Form, name: str, collection: Collection) -> None:
    """Offer in the form's person field `name` the collection's members, by name, and the
    person chosen (a former member, from a row of the list). Anyone else the field accepts
    (its queryset, members_or) is not listed: finding them all would read the collection's
    whole trail, or test every user of the site, on each page load."""
    field = form.fields[name]

    def choices() -> list[tuple]:
        users = list(get_user_model().objects.filter(memberships__collection=collection))
        chosen = getattr(form, "cleaned_data", {}).get(name)
        if chosen is not None and chosen not in users:
            users.append(chosen)
        users.sort(key=lambda user: user.get_username())
        return [("", field.empty_label), *((user.pk, user.get_username()) for user in users)]

    field.choices = choices
