"""What corpus tells the apps built on it, so that its ingestion and segmentation need not
import them."""

from django.dispatch import Signal

# Sent with `document`, inside the transaction that set it RECOGNIZING, once its lines are all
# made (uploaded, imported, fetched or segmented): the recognition pipeline queues them.
lines_ready = Signal()
