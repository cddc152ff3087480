"""The page view names its scripts with their content's version, so that a page served after
a deploy loads the new ones rather than those a browser cached under the same name; and a
tab opened before a deploy learns from its renewals that the scripts changed (page.js then
asks the reviewer to reload it)."""

import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from ocrreview.review import assets
from tests.review.test_page_claims import open_page, page_url

STATIC = Path(django_settings.BASE_DIR) / "static"


@pytest.fixture
def deployed(settings, tmp_path):
    """The static files as a deploy ships them, in a folder the test may change."""
    shutil.copytree(STATIC / "review", tmp_path / "review")
    settings.STATICFILES_DIRS = [tmp_path]
    assets.version.cache_clear()
    yield tmp_path
    assets.version.cache_clear()


def served(client, letters, page) -> tuple[list[str], str]:
    html = client.get(page_url(letters, page)).content.decode()
    scripts = re.findall(r'<script src="(/static/review/[^"]+)"', html)
    return scripts, re.search(r'data-scripts="([0-9a-f]+)"', html)[1]


def test_a_deploy_that_changes_page_js_changes_its_url_and_tells_open_tabs(
    client, bob, letters, page, lines, deployed
):
    client.force_login(bob)
    claim = open_page(client, letters, page)
    before, version = served(client, letters, page)
    assert [re.sub(r"\?v=[0-9a-f]{16}$", "", src) for src in before] == [
        "/static/review/common.js",
        "/static/review/page.js",
    ]
    assert served(client, letters, page) == (before, version)  # the same files, the same URLs
    renewal = client.post(page_url(letters, page, "lease"), {"claim": claim}).json()
    assert renewal["scripts"] == version

    # The deploy: a new page.js, and new processes.
    with open(deployed / "review" / "page.js", "a") as script:
        script.write("\n// the next version\n")
    assets.version.cache_clear()
    after, new_version = served(client, letters, page)
    assert after[0] == before[0]  # common.js did not change
    assert after[1] != before[1]
    assert new_version != version
    # The tab opened before it is told.
    renewal = client.post(page_url(letters, page, "lease"), {"claim": claim}).json()
    assert renewal["scripts"] == new_version
