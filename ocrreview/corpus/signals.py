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
