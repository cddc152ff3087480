import regex
from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Func
from django.db.models.functions import Lower, Now

from ocrreview.corpus.names import NameField
from ocrreview.corpus.signals import member_removed

# A BCP 47 language tag: a language subtag, then script, region or variant subtags.
LANGUAGE_TAG = RegexValidator(
    r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
    "Give a language tag such as fr, de, la or en-GB.",
)


def default_threshold() -> float:
    """The site's threshold for new collections (OCRREVIEW_DEFAULT_THRESHOLD)."""
    return settings.OCRREVIEW_DEFAULT_THRESHOLD


class ModelVersionQuerySet(models.QuerySet):
    # Training, the app above this one, records what makes a version a collection's own and
    # what lets it through: the run that trained it (`training_run`, whose dataset names the
    # collection whose ground truth it learnt) and the promotion gate's decisions
    # (`promotion_events`). Queried here by their query names, and the decisions by the values
    # of PromotionEvent.Kind that let a version through, as this app imports nothing above it.
    LET_THROUGH = ("promoted", "overridden")

    def visible_to(self, collection) -> "ModelVersionQuerySet":
        """Shared base models (hub checkpoints, the starter model) and the collection's own
        fine-tuned versions; other collections' versions are trained on their private
        ground truth and are theirs to see."""
        return self.filter(
            models.Q(training_run__isnull=True)
            | models.Q(training_run__dataset__collection=collection)
        )

    def activatable_in(self, collection) -> "ModelVersionQuerySet":
        """What an admin may make the collection's model by choosing it: a finished shared
        model, or an own version that the promotion gate (or an audited override) let
        through. A version the gate kept inactive goes through the override, which records
        who and why."""
        promoted = ModelVersion.objects.filter(
            promotion_events__collection=collection,
            promotion_events__kind__in=self.LET_THROUGH,
        ).values("pk")
        return (
            self.visible_to(collection)
            .exclude(status=ModelVersion.Status.TRAINING)
            .filter(models.Q(training_run__isnull=True) | models.Q(pk__in=promoted))
        )

    def choosable_in_new(self) -> "ModelVersionQuerySet":
        """What a collection being created may start with: the finished shared models (it has
        no versions of its own yet, and none the gate let through)."""
        return self.filter(training_run__isnull=True).exclude(status=ModelVersion.Status.TRAINING)

    def choosable_in(self, collection) -> "ModelVersionQuerySet":
        """What the collection's settings and re-reading offer: the activatable versions and
        the current one, so that saving other settings never trips on it. Re-reading with a
        version the gate kept inactive would put its readings on every unreviewed line (and
        auto-accept them) without the audited override."""
        return self.filter(
            models.Q(pk__in=self.activatable_in(collection))
            | models.Q(pk=collection.model_version_id)
        )


class ModelVersion(models.Model):
    """A recognition model: a shared base (a hub checkpoint, the starter model) or one that a
    training run fine-tuned on a collection's ground truth. Here, at the bottom, because
    collections and lines name the model that reads them."""

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    name = NameField(max_length=200, unique=True)
    # A hub id (pinned by revision) or a directory on the workers' shared model volume.
    source = models.CharField(max_length=500)
    revision = models.CharField(max_length=100, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    # {"eval_set": "...", "cer": 0.12, "wer": 0.3, "lines": 109, ...}
    metrics = models.JSONField(default=dict, blank=True)
    # The calibration fit from recognition.calibration, applied to raw line confidences.
    calibration = models.JSONField(null=True, blank=True)
    # The calibration's "fitted_on" when made on this site's reviewers' answers, which no
    # shipped fit replaces.
    FITTED_ON_REVIEWS = "reviews"
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # The table training created, kept by name (corpus 0028): the web and workers of the
        # version before, which an upgrade's migrate runs beside, read it by that name.
        db_table = "training_modelversion"

    def __str__(self) -> str:
        return self.name

    @property
    def calibrated_on_reviews(self) -> bool:
        return (
            bool(self.calibration) and self.calibration.get("fitted_on") == self.FITTED_ON_REVIEWS
        )


class Collection(models.Model):
    name = NameField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="collections"
    )
    # Review policy: lines whose calibrated confidence is below the threshold go to a human.
    confidence_threshold = models.FloatField(
        default=default_threshold, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    nbest_size = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="active_in_collections",
        help_text="The model that recognises new lines of this collection.",
    )
    # Characters offered in the editor's palette (ſ, æ, superscripts, ...).
    special_characters = models.CharField(max_length=500, blank=True, default="ſæœ")
    licence = models.CharField(max_length=200, blank=True)
    language = models.CharField(
        max_length=35,
        blank=True,
        validators=[LANGUAGE_TAG],
        help_text="The language of its lines, as a tag such as fr, de, la or en-GB: screen "
        "readers read the lines with its voice, and IIIF exports name it.",
    )
    assigned_only = models.BooleanField(
        default=False,
        db_default=False,
        help_text="The review queue offers each member only the lines of documents assigned "
        "to them; without it, those come first and then the others'.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence_threshold__gte=0.0, confidence_threshold__lte=1.0),
                name="collection_threshold_in_unit_interval",
            ),
            models.CheckConstraint(
                condition=models.Q(nbest_size__gte=1, nbest_size__lte=10),
                name="collection_nbest_size_1_to_10",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def palette(self) -> list[str]:
        """The editor's palette keys: each character of special_characters once, in the order
        typed, spaces left out. A character is a grapheme cluster: q̃, p̄ and m̄ have no
        precomposed forms, and split by code point they would become a bare letter and a
        floating mark, each a key, numbering every key after them one too far. A mark typed
        after a space stays a key of its own, to put on the letter before the caret."""
        keys = (key.lstrip() for key in regex.findall(r"\X", self.special_characters))
        return list(dict.fromkeys(key for key in keys if key))


class Membership(models.Model):
    class Role(models.TextChoices):
        REVIEWER = "reviewer", "Reviewer"
        ADMIN = "admin", "Admin"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REVIEWER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "collection"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.collection} ({self.role})"


class UnprovenAddress(models.Model):
    """An account whose password was chosen through the link shown to the admin who invited it,
    not through one mailed to its address: whoever chose it may not own the address (an admin
    may make an account for someone else's address and keep it), so an invitation of the
    address to another collection does not add it (invitations.do_invite_member). A link
    mailed to the address, a password reset's, proves it and removes this."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="unproven_address"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"the address of {self.user} is unproven"


class Invitation(models.Model):
    """The mail of an invitation by email (invitations.py), with its link to choose a password,
    sent by a worker of the `mail` queue: what became of it, for the collection's admins to see
    on the members page and in the API until the invitee chooses a password."""

    class MailState(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        # The mail server refused it at every try, or as a header injection.
        FAILED = "failed", "Failed"
        # The broker could not be reached: the `mail` workers' sweep sends it once it is back
        # (invitations.requeue_lost_mail).
        NOT_QUEUED = "not_queued", "Not queued"
        # Not sent: a later invitation of the account replaced it, the account chose its
        # password, or the member was removed before a worker came to it.
        CANCELLED = "cancelled", "Cancelled"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(max_length=254)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # Whether the collection's admins are told what became of the mail: of an account that was
    # there before, added now, they are not told that it was mailed at all (invitations.py).
    reported = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)
    mail_state = models.CharField(max_length=16, choices=MailState.choices, default="queued")
    # Why its last try failed: while queued, the reason it is being tried again.
    mail_error = models.TextField(blank=True, default="")
    mail_tries = models.PositiveSmallIntegerField(default=0)
    mail_sent_at = models.DateTimeField(null=True, blank=True)
    # The site its link is made for: the inviting request's host and scheme, which the worker
    # that mails it, and the sweep that sends a lost message again, have no request to tell.
    domain = models.CharField(max_length=255, db_default="")
    use_https = models.BooleanField(db_default=False)
    # While queued, when its message was last sent or its next try is due, by the database's
    # clock; while not queued, when it was made: the `mail` workers' sweep sends it (again)
    # once this is old (invitations.requeue_lost_mail).
    queued_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [
            models.Index(fields=["collection", "user"], name="invitation_member"),
            # The sweep's: the few still queued or not queued, among every invitation ever
            # sent.
            models.Index(
                fields=["queued_at"],
                condition=models.Q(mail_state__in=["queued", "not_queued"]),
                name="invitation_queued",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.collection} ({self.mail_state})"


# An imported register's canvases are some 350 KB a thousand: read only where they are used.
IIIF_JSON_FIELDS = ("iiif_canvases", "iiif_descriptive")


def iiif_json_through(relation: str) -> list[str]:
    """The IIIF JSON fields of the document reached through `relation`, for `defer()` where
    lines or corrections are listed with their document."""
    return [f"{relation}__{name}" for name in IIIF_JSON_FIELDS]


class DocumentQuerySet(models.QuerySet):
    def without_iiif_json(self) -> "DocumentQuerySet":
        """Documents for lists and choices, which read none of their IIIF JSON."""
        return self.defer(*IIIF_JSON_FIELDS)


class Document(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        FETCHING = "fetching", "Fetching images"
        SEGMENTING = "segmenting", "Segmenting"
        RECOGNIZING = "recognizing", "Recognizing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class ReviewState(models.TextChoices):
        """Where people say the document's review stands, set by them (corpus/workflow.py);
        `Status` is the pipeline's."""

        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        IN_QA = "in_qa", "In QA"
        FINAL = "final", "Final"

    class Segmentation(models.TextChoices):
        KRAKEN = "kraken", "Detect lines (kraken)"
        WHOLE_IMAGE = "whole_image", "Each image is one line"
        IMPORTED = "imported", "Keep imported PAGE/ALTO lines"

    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="documents")
    title = NameField(max_length=300)
    source_file = models.FileField(upload_to="uploads/%Y/%m/", blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    segmentation = models.CharField(
        max_length=16, choices=Segmentation.choices, default=Segmentation.KRAKEN
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    error = models.TextField(blank=True)
    # A final document's lines are no longer offered, claimed or changed (review/actions.py).
    review_state = models.CharField(
        max_length=16, choices=ReviewState.choices, default=ReviewState.OPEN, db_default="open"
    )
    assignees = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="DocumentAssignment",
        through_fields=("document", "user"),
        related_name="assigned_documents",
        blank=True,
    )
    # A document imported from a IIIF manifest: the manifest's URL, its label, summary,
    # metadata, requiredStatement and rights as Presentation 3 values (a version 2 manifest's
    # converted), and its canvases in order, each with the image to fetch, which a page is
    # made from. Exports point back to the manifest's canvases and image services, and carry
    # the rights and requiredStatement (which the demo's uploaded pages have too).
    iiif_manifest = models.URLField(max_length=2000, blank=True)
    # The uploaded file's SHA-256: the same file uploaded again (a retry after a proxy's 504 on
    # a long PDF, a folder uploaded twice) would be read, and reviewed, twice.
    source_sha256 = models.CharField(max_length=64, blank=True)
    iiif_descriptive = models.JSONField(default=dict, blank=True)
    iiif_canvases = models.JSONField(default=list, blank=True)
    # While FETCHING or SEGMENTING: the task (its id) that holds the document's work, and its
    # last sign of life (queued, starting a canvas or a page, a retry planned for then). Work
    # silent for longer than a canvas or a page may take lost its message or its worker; the
    # sweep queues another task, which takes it over (claims.py).
    worked_by = models.CharField(max_length=64, blank=True)
    work_alive_at = models.DateTimeField(null=True, blank=True)
    # Takeovers of silent work: a canvas or a page that kills its worker each time would
    # otherwise be worked on again every silence, forever.
    work_takeovers = models.PositiveSmallIntegerField(default=0)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["collection", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "iiif_manifest"],
                condition=~models.Q(iiif_manifest=""),
                name="one_document_per_iiif_manifest",
            ),
            models.UniqueConstraint(
                fields=["collection", "source_sha256"],
                condition=~models.Q(source_sha256=""),
                name="one_document_per_uploaded_file",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_final(self) -> bool:
        """Its lines are locked: what every check of a final document reads (the review
        actions, find and replace, the editor and page view), so that they cannot drift."""
        return self.review_state == self.ReviewState.FINAL


class DocumentAssignment(models.Model):
    """A member a coordinator gave the document to: the review queue offers them its lines
    first. Removing the member from the collection removes it (membership_deleted)."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="document_assignments"
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "user"], name="one_assignment_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.document} assigned to {self.user}"


class Page(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SEGMENTING = "segmenting", "Segmenting"
        SEGMENTED = "segmented", "Segmented"
        FAILED = "failed", "Failed"

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="pages")
    index = models.PositiveIntegerField()
    # width and height are set by ingestion, not by ImageField's width_field, which would
    # open the image file every time a Page is loaded.
    image = models.ImageField(upload_to="pages/%Y/%m/")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    # The IIIF canvas the page shows, for a document imported from a manifest.
    iiif_canvas = models.URLField(max_length=2000, blank=True)
    # The image's file name as the uploader has it (see ingestion.source_names), which PAGE,
    # ALTO and TEI name so that Transkribus or eScriptorium pair them with the scans. Blank
    # for pages made before it was kept, which transcripts name after the document.
    source_name = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["document", "index"]
        constraints = [
            models.UniqueConstraint(fields=["document", "index"], name="unique_page_index")
        ]

    def __str__(self) -> str:
        return f"{self.document} p.{self.index + 1}"


# 'simple' lowercases and splits, nothing more: a collection mixes English and French (and
# Latin, Dutch...) line by line, and a language's stemmer and stop words would mangle the
# others' words, drop "Des" or "Will" as stop words when they are names, and stem the spelling
# of old hands that no dictionary knows. Words spelled with other accents are found through
# the vocabulary folded (SearchWord), misreadings by trigram similarity
# (ocrreview/review/search.py).
SEARCH_CONFIG = "simple"

# Combining marks, which folding drops once NFKD has split them off their letters: the
# Combining Diacritical Marks block, its supplements (the medievalists' letters written above
# a letter among them), those for symbols, and the half marks.
COMBINING_MARKS = r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
# Text without its accents: NFKD splits é into e and an acute accent, and turns ſ into s and
# ﬁ into f and i; the marks are then dropped. Built-in functions only, as the embedded
# PostgreSQL has no unaccent; normalize() is IMMUTABLE (PostgreSQL 13 and later), so an index
# may hold it.
FOLD_SQL = "regexp_replace(normalize({}, NFKD), '" + COMBINING_MARKS + "', '', 'g')"


class Folded(Func):
    template = FOLD_SQL.format("%(expressions)s")
    output_field = models.TextField()


def line_search_vector() -> SearchVector:
    """The words of a line's text, as Line.search_vector stores them."""
    return SearchVector("text", config=SEARCH_CONFIG)


class Line(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending recognition"
        RECOGNIZED = "recognized", "Recognized"
        NEEDS_REVIEW = "needs_review", "Needs review"
        IN_REVIEW = "in_review", "In review"
        REVIEWED = "reviewed", "Reviewed"
        AUTO_ACCEPTED = "auto_accepted", "Auto-accepted"
        FAILED = "failed", "Recognition failed"

    # collection and document repeat what page implies so the review queue and a document's
    # reading order are single-index scans; save() keeps them consistent with page.
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="lines")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="lines")
    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="lines")
    order = models.PositiveIntegerField(help_text="Reading order within the page.")
    # Bounding box in page pixels: [x0, y0, x1, y1].
    bbox = models.JSONField()
    polygon = models.JSONField(default=list, blank=True, help_text="[[x, y], ...] in page pixels")
    baseline = models.JSONField(default=list, blank=True, help_text="[[x, y], ...] in page pixels")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=False
    )
    text = models.TextField(blank=True)
    # The text was cut or joined from a person's reviewed text by a segmentation edit: the line
    # needs review again, but a model's reading adds hypotheses and never replaces the text.
    human_text = models.BooleanField(default=False)
    # A reviewer could not read the line for sure (review's do_mark_unclear): its text is a
    # guess, left out of training data until someone who can read it removes the mark. Saving
    # a text keeps it; who set it and removed it, and when, is in the line's correction trail.
    unclear = models.BooleanField(default=False, db_default=False)
    unclear_note = models.CharField(max_length=200, blank=True, default="", db_default="")
    # Stored rather than computed in the query: a search that matches thousands of lines
    # would otherwise parse each of them again to rank it.
    search_vector = models.GeneratedField(
        expression=line_search_vector(), output_field=SearchVectorField(), db_persist=True
    )
    # Calibrated confidence of the current text's hypothesis; routing compares it to the
    # collection's threshold.
    confidence = models.FloatField(null=True, blank=True)
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The model whose hypotheses the line currently shows.",
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    # While claimed: the page view (one opening of it, in one tab) that claimed the line, whose
    # leaving hands back only its own claims; NULL for a claim made for one line (the line
    # editor, the queue, the API), which a page view of the same reviewer leaves alone.
    page_view_claim = models.UUIDField(null=True, blank=True)
    # Optimistic concurrency: every change of text or status increments it, and a save
    # that names an older version is refused instead of overwriting.
    version = models.PositiveIntegerField(default=1)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["page__index", "order"]
        indexes = [
            models.Index(fields=["collection", "status", "confidence"], name="review_queue"),
            models.Index(fields=["document", "page", "order"], name="reading_order"),
            # The review queue in reading order: which documents and pages still wait, without
            # reading the rows of the pages already reviewed.
            models.Index(
                fields=["collection", "document", "page", "order"],
                condition=models.Q(status="needs_review"),
                name="waiting_in_reading_order",
            ),
            models.Index(fields=["status", "id"], name="pending_lines"),
            # Search's "unclear lines only" without a word lists them in id order: without it
            # the planner walks the primary key through the collection's other lines (180,000
            # read on 1.2 M lines for a first page of 20, all of them where none is unclear).
            models.Index(
                fields=["collection", "id"], condition=models.Q(unclear=True), name="unclear_lines"
            ),
            GinIndex(fields=["search_vector"], name="line_search_vector"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(claimed_by__isnull=True, claimed_until__isnull=True)
                    | models.Q(claimed_by__isnull=False, claimed_until__isnull=False)
                ),
                name="line_claim_has_holder_and_expiry",
            ),
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True)
                | models.Q(confidence__gte=0.0, confidence__lte=1.0),
                name="line_confidence_in_unit_interval",
            ),
        ]

    def __str__(self) -> str:
        return f"line {self.pk} ({self.status})"

    def save(self, *args, **kwargs) -> None:
        if self.document_id is None or self.collection_id is None:
            self.document_id = self.page.document_id
            self.collection_id = self.page.document.collection_id
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not (isinstance(self.bbox, list) and len(self.bbox) == 4):
            raise ValidationError({"bbox": "A bounding box is [x0, y0, x1, y1]."})
        x0, y0, x1, y1 = self.bbox
        if x1 <= x0 or y1 <= y0:
            raise ValidationError({"bbox": "A bounding box needs x1 > x0 and y1 > y0."})


def folded_word() -> Lower:
    """A vocabulary word folded, lowercased again (NFKD turns "ℂ" into "C"), as a folded
    query's words are."""
    return Lower(Folded("word"))


class SearchWord(models.Model):
    """A word of a collection's lines, as their search vectors hold it: the vocabulary that
    search compares a query's words with to find similar ones ("babcok" finds "babcock"),
    tens of thousands of rows where comparing with the lines would read millions.

    Database triggers on corpus_line (migration 0007) add the words of every line inserted or
    whose text changes, whichever code path writes it. They insert without a unique
    constraint, so that writers never wait on each other's vocabulary: two transactions that
    add the same new word at once leave it twice, which lookups ignore. Words whose lines are
    gone stay; a lookup then finds a word that matches no line, which costs nothing.

    Every word of every line is here, so search also finds the words a query's words are once
    folded ("église" and "eglise" for "eglise", "meſſieurs" for "messieurs"), and asks the
    lines' stored search vectors for those: no line is folded at query time, and
    corpus_line needs no second vector, whose stored column would have rewritten a million
    lines under a lock that stops reads and saves."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="+")
    word = models.TextField()

    class Meta:
        # The trigram index beside it, for similarity, is made by migration 0007 where the
        # server has pg_trgm.
        indexes = [
            models.Index(fields=["collection", "word"], name="search_word_lookup"),
            models.Index("collection", folded_word(), name="search_word_folded"),
        ]

    def __str__(self) -> str:
        return self.word


class ApiToken(models.Model):
    """A key for the HTTP API. Only its SHA-256 is stored: a leaked database does not leak
    usable keys. The prefix lets a user tell their tokens apart."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = NameField(max_length=100)
    prefix = models.CharField(max_length=8)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The nonce of the page's form that made it: the browser's resend of that form (a reload
    # of the answer showing the key) finds it, and makes no second token.
    form_nonce = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "form_nonce"],
                condition=~models.Q(form_nonce=""),
                name="one_token_per_form",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"


class CollectionEvent(models.Model):
    """What an admin did to a collection (its settings, model, documents, members, an undo of
    someone's saves), the segmentation edits that leave no correction, and changes of a page's
    reading order (a line's place says nothing of its text or box): one row per change,
    written by the action that makes it, in the change's transaction, so a refused or
    rolled-back change leaves none (as Zulip's RealmAuditLog). A line's text, and box edits
    of reviewed lines, are the correction trail's (review.Correction), not this.

    What an event is about is named by ids, not foreign keys, and described in extra_data
    (a document's title, a page's number, the old and new values): deleting a document or a
    line keeps the event that says who deleted it. Deleting the acting user keeps it too,
    without their name."""

    class Type(models.TextChoices):
        SETTINGS_CHANGED = "settings_changed", "Settings changed"
        THRESHOLD_APPLIED = "threshold_applied", "Threshold applied to the lines"
        MODEL_PROMOTED = "model_promoted", "Model promoted"
        LINES_REREAD = "lines_reread", "Lines queued to be read again"
        DOCUMENT_DELETED = "document_deleted", "Document deleted"
        DOCUMENT_SEGMENTED_AGAIN = "document_segmented_again", "Document segmented again"
        MEMBER_ADDED = "member_added", "Member added"
        MEMBER_ROLE_CHANGED = "member_role_changed", "Member's role changed"
        MEMBER_REMOVED = "member_removed", "Member removed"
        SAVES_UNDONE = "saves_undone", "A person's saves undone"
        LINE_ADDED = "line_added", "Line added"
        LINE_MOVED = "line_moved", "Line box moved"
        LINE_DELETED = "line_deleted", "Line deleted"
        LINE_REORDERED = "line_reordered", "Line moved in reading order"
        PAGE_SORTED = "page_sorted", "Page's lines sorted by position"
        PAGE_SORT_UNDONE = "page_sort_undone", "Sort of a page undone"
        REVIEW_STATE_CHANGED = "review_state_changed", "Document's review state changed"
        ASSIGNEES_CHANGED = "assignees_changed", "Document's assignees changed"
        TEXT_REPLACED = "text_replaced", "Words replaced across lines"
        COLLECTION_CREATED = "collection_created", "Collection created"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="events")
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who made the change; empty for the system (the promotion gate), or once "
        "the account is deleted.",
    )
    event_type = models.CharField(max_length=32, choices=Type.choices)
    event_time = models.DateTimeField(db_default=Now())
    document_id = models.BigIntegerField(null=True, blank=True)
    page_id = models.BigIntegerField(null=True, blank=True)
    line_id = models.BigIntegerField(null=True, blank=True)
    extra_data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-event_time", "-id"]
        indexes = [
            models.Index(fields=["collection", "event_time", "id"], name="collection_events"),
            # The History's filters, newest first: a rare type or a former member's few events
            # would otherwise be looked for through all the collection's events (50,000 rows
            # read for the page of a type with none).
            models.Index(
                fields=["collection", "event_type", "event_time", "id"], name="events_by_type"
            ),
            models.Index(
                fields=["collection", "acting_user", "event_time", "id"], name="events_by_person"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} in collection {self.collection_id} at {self.event_time}"


def hand_back_claims(lines: models.QuerySet) -> None:
    """The lines' claims end: those in review go back to the queue, for colleagues to open."""
    lines.update(
        status=models.Case(
            models.When(status=Line.Status.IN_REVIEW, then=models.Value(Line.Status.NEEDS_REVIEW)),
            default=models.F("status"),
        ),
        claimed_by=None,
        claimed_until=None,
    )


def user_deleted(sender, instance, **kwargs) -> None:
    """The user model's pre_delete. SET_NULL alone would leave a claim's expiry without its
    holder, which the claim constraint refuses, failing the deletion."""
    hand_back_claims(Line.objects.filter(claimed_by=instance))


def membership_deleted(sender, instance: Membership, **kwargs) -> None:
    """Membership's post_delete, however it is deleted (the members page, the Django admin,
    the user's deletion): what the user held in the collection goes, as `member_removed`
    says."""
    hand_back_claims(
        Line.objects.filter(collection_id=instance.collection_id, claimed_by_id=instance.user_id)
    )
    DocumentAssignment.objects.filter(
        document__collection_id=instance.collection_id, user_id=instance.user_id
    ).delete()
    member_removed.send(Membership, collection=instance.collection, user=instance.user)
