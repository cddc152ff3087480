"""The browser tests' end-of-test wait counts what the live server serves, not the test
client's requests, whose streamed answers finish only when a test reads them."""

import pytest
from django.urls import reverse

from ocrreview.corpus.tokens import do_create_api_token
from tests import factories
from tests.playwright_fixtures import SERVED


@pytest.mark.django_db
def test_an_unread_streamed_answer_to_the_test_client_is_not_waited_for(client, bob, letters):
    page = factories.make_page(factories.make_document(letters))
    headers = {"Authorization": f"Token {do_create_api_token(bob, 'test')}"}
    response = client.get(reverse("api_page_image", args=[page.pk]), headers=headers)
    assert response.status_code == 200 and response.streaming
    assert SERVED.count == 0
