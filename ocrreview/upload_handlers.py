"""Files arriving in a request are written to temporary files before any view sees them; a
view's size check came after all of it was on disk. A 50 GB upload filled the disk of a
single-machine site, where the embedded PostgreSQL and the media live, before it was told
the limit."""

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Writes a file only up to OCRREVIEW_MAX_UPLOAD_MB, the most any file may be, and drops
    the rest as it arrives; the file keeps the size it was sent with, which the views'
    checks refuse with the size and the limit (corpus.ingestion, training.forms). Reading
    the rest off the connection, rather than stopping, lets the request be answered."""

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.written = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        room = settings.OCRREVIEW_MAX_UPLOAD_MB * 1024 * 1024 - self.written
        if room > 0:
            self.file.write(raw_data[:room])
            self.written += min(room, len(raw_data))
