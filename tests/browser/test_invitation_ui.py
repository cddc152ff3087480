"""An invitation in a real headless Chromium: the admin fills the members page's invite form
by its labels, the page shows a link for the new account and its mail queued, the mail (sent
as the `mail` queue's worker sends it) arrives at a real SMTP server, the page says it was
sent, and the invitee opens the link in a browser of their own, chooses a password and logs
in."""

import re

import pytest
from playwright.sync_api import expect

from tests.foundation.test_invitations import (  # noqa: F401 (an autouse fixture)
    _no_mail_queued,
    account_of,
    forget_invitation_counts,
)
from tests.playwright_fixtures import log_in
from tests.workers import run_queued

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PASSWORD = "quill and vellum 1848"


@pytest.fixture(autouse=True)
def _forget_invitation_counts(db):
    yield
    forget_invitation_counts()


def test_alice_invites_jane_who_sets_her_password_and_logs_in(
    new_page, alice, letters, smtp_server, live_server
):
    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/members/")
    # Both forms have a role: each form is named by its heading, each label names its field.
    invite = page.get_by_role("form", name="Invite by email")
    invite.get_by_label("Email").fill("jane@example.org")
    invite.get_by_label("Name").fill("Jane Doe")
    invite.get_by_label("Role").select_option("admin")
    invite.get_by_role("button", name="Invite").click()

    expect(page.get_by_role("status")).to_contain_text("Invitation to jane@example.org made")
    link = page.get_by_label(re.compile("Their link to choose a password")).input_value()
    assert link.startswith(live_server.url)
    row = page.get_by_role("row", name=re.compile("^jane"))
    expect(row).to_contain_text("mail queued")
    assert run_queued("mail") == 1  # what the mail queue's worker does
    (mail,) = smtp_server.received
    assert f"{live_server.url}/accounts/password/reset/{account_of(link)}/" in mail.body
    page.reload()
    expect(row).to_contain_text("mail sent")
    expect(row.get_by_role("button", name="Re-send the invitation to jane")).to_be_visible()

    jane = new_page()
    jane.goto(link)
    expect(jane.get_by_role("heading", name="Choose your password")).to_be_visible()
    jane.get_by_label("New password:", exact=True).fill(PASSWORD)
    jane.get_by_label("New password confirmation").fill(PASSWORD)
    jane.get_by_role("button", name="Set my password").click()
    expect(jane.get_by_role("heading", name="Password set")).to_be_visible()
    log_in(jane, "jane", PASSWORD)
    expect(jane.get_by_role("link", name="Letters")).to_be_visible()
