from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import BaseUserManager

from ocrreview.corpus import calibration_guard, tokens
from ocrreview.corpus.line_text import nfc
from ocrreview.corpus.models import Collection, Document, Membership, ModelVersion
from ocrreview.corpus.names import NameFormField, holds_unmeant_characters


class CollectionSettingsForm(forms.ModelForm):
    class Meta:
        model = Collection
        fields = [
            "description",
            "confidence_threshold",
            "nbest_size",
            "model_version",
            "special_characters",
            "licence",
            "language",
            "assigned_only",
        ]
        widgets = {"confidence_threshold": forms.NumberInput(attrs={"step": "0.01"})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The page sends back the values it showed beside those typed, so that changed_data
        # names what the admin changed, not what changed since the page was opened.
        for field in self.fields.values():
            field.show_hidden_initial = True
        collection = self.instance
        self.fields["model_version"].queryset = ModelVersion.objects.choosable_in(collection)

    confirm_uncalibrated = forms.BooleanField(
        required=False,
        label=calibration_guard.CONFIRM_LABEL,
        help_text="Asked when the threshold or the model changes and the model that reads "
        "the lines has no calibration.",
    )

    @property
    def changed_data(self) -> list[str]:
        # A confirmation, not a setting: nothing to write onto the collection.
        return [n for n in super().changed_data if n != calibration_guard.CONFIRM_FIELD]

    def clean(self) -> dict:
        cleaned = super().clean()
        threshold, version = cleaned.get("confidence_threshold"), cleaned.get("model_version")
        if threshold is None or "model_version" in self.errors:
            return cleaned
        # What the admin changed (on the page: from what it showed; the API's form shows
        # nothing) to other than the collection has now (self.instance, not yet written
        # onto): a model promoted since the page opened asks nothing of an admin who did
        # not touch it, nor does a PATCH of the description.
        changed = super().changed_data
        moved = (
            "confidence_threshold" in changed
            and threshold != self.instance.confidence_threshold
            or "model_version" in changed
            and getattr(version, "pk", None) != self.instance.model_version_id
        )
        if moved and not cleaned.get(calibration_guard.CONFIRM_FIELD):
            problem = calibration_guard.uncalibrated_auto_accept(threshold, version)
            if problem:
                self.add_error(calibration_guard.CONFIRM_FIELD, problem)
        return cleaned

    def clean_special_characters(self) -> str:
        # The lines' text is NFC: a key typed decomposed ("e" and a combining acute) would put
        # in a spelling of "é" that is not the one searches and exports compare with.
        return nfc(self.cleaned_data["special_characters"])


class NewCollectionForm(forms.ModelForm):
    """A collection made by site staff, and the account that becomes its first admin: the
    staff member themselves unless another is named. The language is checked as the settings
    form checks it (the model's BCP 47 validator)."""

    admin = forms.CharField(
        max_length=150,
        required=False,
        help_text="The username of the account that becomes its admin; empty: yours.",
    )

    class Meta:
        model = Collection
        fields = ["name", "description", "language", "licence"]

    def clean_name(self) -> str:
        # Names are unique: a second "Letters" would be told apart by nobody in a list.
        name = self.cleaned_data["name"]
        if Collection.objects.filter(name=name).exists():
            raise forms.ValidationError(
                f"A collection named “{name}” already exists.", code="unique"
            )
        return name

    def clean_admin(self):
        """The account itself; None when left empty (the person creating it)."""
        username = self.cleaned_data["admin"]
        return active_account(username) if username else None


class ApiTokenForm(forms.Form):
    name = NameFormField(
        max_length=100, help_text="What the token is for: a script, a notebook, a machine."
    )
    # Each page's form makes one token: reloading the answer that shows a key sends the form
    # again, which would make a second token, the first one's key never seen.
    once = forms.CharField(widget=forms.HiddenInput, max_length=64, initial=tokens.new_form_nonce)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class AddMemberForm(forms.Form):
    """An existing, active account, by its username; whether it is a member already is
    decided by do_add_member, under the lock that makes the answer hold."""

    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.REVIEWER)

    def clean_username(self):
        """The account itself, in place of its name."""
        return active_account(self.cleaned_data["username"])


class InviteMemberForm(forms.Form):
    """An address, whose account is added or made by do_invite_member under its lock."""

    email = forms.EmailField(max_length=254)
    name = forms.CharField(
        max_length=150, required=False, help_text="For a new account: how the person is named."
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.REVIEWER)

    def clean_email(self) -> str:
        # The domain is case-insensitive, the local part is the mail server's to read.
        return BaseUserManager.normalize_email(self.cleaned_data["email"])

    def clean_name(self) -> str:
        # Refused rather than cleaned: the name goes into the mails the account's owner later
        # sends (their subject line), and a bidi control would show the inviter another name.
        name = self.cleaned_data["name"]
        if holds_unmeant_characters(name):
            raise forms.ValidationError(
                "A name cannot hold line breaks, control characters or bidi controls.",
                code="control_character",
            )
        return name


def active_account(username: str):
    User = get_user_model()
    user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
    if user is None:
        raise forms.ValidationError(
            f"No account is named “{username}” (usernames are case-sensitive).",
            code="unknown_user",
        )
    if not user.is_active:
        raise forms.ValidationError(
            f"{username}'s account is deactivated; a site admin can reactivate it.",
            code="inactive_user",
        )
    return user


class ReviewStateForm(forms.Form):
    """A document's review state, from the state the person saw (on the page, and in the
    API, where leaving it out means the state the document has as the request is read)."""

    review_state = forms.ChoiceField(choices=Document.ReviewState.choices)
    expected_review_state = forms.ChoiceField(choices=Document.ReviewState.choices, required=False)


class AssigneesForm(forms.Form):
    """The members a document is assigned to, all of them (an empty list: nobody), and those
    it was assigned to when the person chose them."""

    assignees = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), required=False
    )
    expected_assignees = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), required=False
    )

    def __init__(self, *args, collection: Collection, **kwargs):
        super().__init__(*args, **kwargs)
        # Anyone else is an invalid choice; do_set_assignees checks again under its lock.
        members = (
            get_user_model().objects.filter(memberships__collection=collection).order_by("username")
        )
        self.fields["assignees"].queryset = members
        # Anyone: a member removed since the list was shown is in it, and the change is then
        # refused as a conflict saying who has the document now, not as an invalid choice.
        self.fields["expected_assignees"].queryset = get_user_model().objects.all()
