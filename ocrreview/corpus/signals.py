"""What corpus tells the apps built on it, which it does not import."""

from django.dispatch import Signal

# Sent with `document`, inside the transaction that set it RECOGNIZING, once its lines are all
# made (uploaded, imported, fetched or segmented): the recognition pipeline queues them.
lines_ready = Signal()
