"""What corpus tells the apps built on it, so that its ingestion and segmentation need not
import them."""

from django.dispatch import Signal

# Sent with `document`, inside the transaction that set it RECOGNIZING, once its lines are all
# made (uploaded, imported, fetched or segmented): the recognition pipeline queues them.
lines_ready = Signal()

# Sent with `lines` and `user` (None for no one signed in), inside the transaction that made
# the lines, when a PAGE or ALTO file's text became their reviewed text: review records it as
# every human-made text is recorded.
text_imported = Signal()

# Sent with `lines` and `user`, inside the same transaction, when a PAGE or ALTO file's unclear
# marks (with their notes) were restored on lines it brought text for: review records where the
# mark came from.
unclear_imported = Signal()

# Sent with `line_ids`; each receiver answers the ids of those lines that a person has started
# correcting (review: an unsaved draft, kept when they skipped the line). The recognition
# routing leaves them with the reviewers whatever the model's confidence, and a document is
# not deleted from under them: either would take their fix away.
being_corrected = Signal()


# Sent with `line_ids`; each receiver answers (line id, text) pairs of texts those lines held
# before their current one (review: what its corrections wrote), so that an export brought
# back is known by any text its lines had.
texts_held_before = Signal()


# Sent with `collection` and `user`, inside the transaction that removed the user from the
# collection: review deletes the drafts they typed into its lines, which no one else may restore
# and which keep those lines with the reviewers whatever the model's confidence.
member_removed = Signal()

# Sent with `collection` and `user`; each receiver answers how many of the collection's lines
# hold work of the user's that removing them from it deletes (review: unsaved drafts), so that
# the members page says so before it is done.
unsaved_work_of_member = Signal()


def lines_being_corrected(line_ids: list[int]) -> set[int]:
    return set().union(*(answer for _, answer in being_corrected.send(None, line_ids=line_ids)))


def lines_with_unsaved_work(collection, user) -> int:
    answers = unsaved_work_of_member.send(None, collection=collection, user=user)
    return sum(answer for _, answer in answers)
