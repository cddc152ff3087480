from django import forms

from ocrreview.corpus import audit, keyset, trail_people
from ocrreview.corpus.models import Collection, CollectionEvent


class EventFilterForm(forms.Form):
    """A collection's events, as its admins look for who changed what: on the History page and
    in the API. A value that is none of the choices (an unknown type, a user id that is not a
    number, or no member's) is refused by name."""

    event_type = forms.ChoiceField(
        choices=[("", "every change"), *CollectionEvent.Type.choices],
        required=False,
        label="What",
    )
    user = forms.ModelChoiceField(
        queryset=None,  # the collection's: set by the form
        required=False,
        empty_label="everyone",
        label="Who",
        error_messages={
            "invalid_choice": "User %(value)s is no member of this collection and made no "
            "change of it."
        },
    )
    cursor = keyset.CursorField()
    page_size = forms.IntegerField(required=False, min_value=1, max_value=keyset.MAX_PAGE_SIZE)

    def __init__(self, *args, collection: Collection, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = audit.event_users(collection)
        trail_people.offer_members(self, "user", collection)

    def filters(self) -> dict:
        return {name: self.cleaned_data[name] for name in ("event_type", "user")}
