"""What transcription asks of the apps built on it, so that its routing need not import them."""

from django.dispatch import Signal

# Sent with `line_ids` while a batch's readings are stored; each receiver answers the ids of
# those lines that a person has started correcting (review: an unsaved draft, kept when they
# skipped the line), which the routing leaves with the reviewers whatever the model's
# confidence: accepting the reading would take their fix out of every queue.
being_corrected = Signal()
