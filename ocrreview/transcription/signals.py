"""What recognition tells the apps built on it, so that it need not import them."""

from django.dispatch import Signal

# Sent with `texts_before` (line id: the text the line had), inside the transaction that wrote
# a model's reading over the different text of lines marked unclear: review takes off the marks
# that were only about the text gone (an import's), and records it.
marked_text_replaced = Signal()
