"""Which version of the page view's scripts a page was served with. whitenoise serves static
files under their own names (CompressedStaticFilesStorage, not a manifest of hashed names),
and browsers may keep one for WHITENOISE_MAX_AGE: the page names its scripts with their
content's hash, so that a page served after a deploy loads the new ones. A tab opened before
the deploy runs the old ones until it is reloaded; its renewals learn the scripts' version
now and page.js asks the reviewer to reload it."""

import functools
import hashlib

from django.contrib.staticfiles import finders
from django.templatetags.static import static

# The page view's scripts: page.js calls common.js, so a change to either is a new version.
PAGE_VIEW_SCRIPTS = ("review/common.js", "review/page.js")


@functools.cache
def version(*paths: str) -> str:
    """A hash of the files' content, read once a process: a deploy starts new processes."""
    digest = hashlib.sha256()
    for path in paths:
        found = finders.find(path)
        if found is None:
            raise FileNotFoundError(f"no static file {path}")
        with open(found, "rb") as file:
            digest.update(hashlib.sha256(file.read()).digest())
    return digest.hexdigest()[:16]


def versioned_url(path: str) -> str:
    return f"{static(path)}?v={version(path)}"
