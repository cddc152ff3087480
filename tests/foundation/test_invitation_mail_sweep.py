"""An invitation whose mail's message was lost (Redis restarted without its data, or the web
process died between committing the invitation and queuing its mail) is sent again by the
`mail` workers' sweep once its message is OCRREVIEW_LOST_MESSAGE_SECONDS old, and one whose
mail was not queued (the broker down) as long after it was made, once the broker answers,
within the account's limit on links mailed; two sweeps at once send it once, one sent, failed
for good or waiting for its retry is not sent again, and one sent twice is mailed once. Through real Redis, a real SMTP server (aiosmtpd) and, in the
slow test, a real worker of the `mail` queue."""

import base64
import json
import smtplib
from datetime import timedelta

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models.functions import Now
from django.test import Client
from kombu.exceptions import OperationalError

from ocrreview.corpus import invitations
from ocrreview.corpus.management.commands.serve import MAIL_WORKER_QUEUES
from ocrreview.corpus.models import Invitation
from ocrreview.sweep import lost_after
from tests.db_locks import once_another_session_commits
from tests.foundation.test_invitations import (
    _fast_passwords,
    _forget_invitation_counts,
    _no_mail_queued,
    choose_password,
    invite,
    link_in,
    members_url,
    shown_link,
)
from tests.foundation.test_password_reset import broker, wait_for
from tests.workers import celery_worker, run_queued

# The invitation tests' fixtures (the autouse ones, and the test's Redis emptied).
_fixtures = (_fast_passwords, _forget_invitation_counts, _no_mail_queued, broker)

OLD = lost_after() + timedelta(minutes=1)


def queued_mail(broker) -> list[int]:
    """The invitations whose mail's message waits in the `mail` queue, oldest first (kombu
    pushes each to the head of the queue's Redis list and takes from its tail)."""
    bodies = [json.loads(raw)["body"] for raw in reversed(broker.lrange("mail", 0, -1))]
    return [json.loads(base64.b64decode(body))[0][0] for body in bodies]


def lost_invitation(client, collection, email, broker, *, age=OLD, **fields) -> Invitation:
    """Invited as the members page invites, its mail's message then lost with Redis's data,
    `age` ago."""
    invite(client, collection, email, deliver=False)
    broker.delete("mail")
    made = Invitation.objects.get(email=email)
    Invitation.objects.filter(pk=made.pk).update(queued_at=Now() - age, **fields)
    return Invitation.objects.get(pk=made.pk)


def not_queued_invitation(client, collection, email, broker, *, age=OLD, **fields) -> Invitation:
    """Invited `age` ago as the members page invites with the broker down: its mail not
    queued, and the account's limit on links mailed given back (queue_invitation_mail)."""
    made = lost_invitation(
        client,
        collection,
        email,
        broker,
        age=age,
        mail_state="not_queued",
        mail_error=invitations.NOT_QUEUED,
        **fields,
    )
    cache.delete(invitations.rate_key("account", made.user_id))
    return made


def test_an_old_queued_invitation_is_sent_again_once(client, alice, letters, broker, smtp_server):
    client.force_login(alice)
    lost = lost_invitation(client, letters, "jane@example.org", broker)
    young = lost_invitation(client, letters, "kim@example.org", broker, age=timedelta(minutes=1))
    for state in ("sent", "failed", "cancelled"):
        lost_invitation(client, letters, f"{state}@example.org", broker, mail_state=state)

    assert invitations.requeue_lost_mail() == 1
    assert queued_mail(broker) == [lost.pk]
    sent = Invitation.objects.get(pk=lost.pk)
    assert sent.queued_at > lost.queued_at and sent.mail_state == "queued"
    assert Invitation.objects.get(pk=young.pk).queued_at == young.queued_at
    # Sent again, it waits as long again before a sweep sends it once more.
    assert invitations.requeue_lost_mail() == 0
    assert queued_mail(broker) == [lost.pk]

    assert run_queued("mail") == 1
    (mail,) = smtp_server.received
    assert mail.recipients == ["jane@example.org"]
    assert link_in(mail.body)  # to the site it was invited on, kept for the sweep
    assert Invitation.objects.get(pk=lost.pk).mail_state == "sent"


def test_the_time_after_which_a_mail_is_lost_is_the_setting(
    client, alice, letters, broker, settings
):
    client.force_login(alice)
    waiting = lost_invitation(client, letters, "jane@example.org", broker, age=timedelta(hours=1))
    settings.OCRREVIEW_LOST_MESSAGE_SECONDS = 7200
    assert invitations.requeue_lost_mail() == 0
    settings.OCRREVIEW_LOST_MESSAGE_SECONDS = 60
    assert invitations.requeue_lost_mail() == 1
    assert queued_mail(broker) == [waiting.pk]


def test_a_mail_waiting_for_its_retry_is_not_lost(client, alice, letters, broker):
    """Refused for now, its retry waits on its worker (up to 21 minutes, past the sweep's
    threshold): the sweep counts from when the retry is due."""
    client.force_login(alice)
    retrying = lost_invitation(client, letters, "jane@example.org", broker)
    refused = smtplib.SMTPResponseException(451, b"try again later")
    invitations.record_mail_failure(retrying.pk, refused, final=False, retry_in=1280)
    assert invitations.requeue_lost_mail() == 0
    assert queued_mail(broker) == []


@pytest.mark.django_db(transaction=True)
def test_a_failing_try_is_not_lost_before_its_failure_is_recorded(
    client, alice, letters, broker, smtp_down
):
    """A slow message's send failed and rolled back, releasing the row; its worker has not
    recorded the failure (and the retry's due time) yet. A sweep now finds the try just made,
    not a message sent long ago: it sends no second one, which would start a second chain of
    retries."""
    client.force_login(alice)
    slow = lost_invitation(client, letters, "jane@example.org", broker)
    with pytest.raises(OSError):
        invitations.send_invitation(slow.pk, slow.domain, slow.use_https)
    assert invitations.requeue_lost_mail() == 0
    assert queued_mail(broker) == []
    invitations.record_mail_failure(slow.pk, OSError("refused"), final=False, retry_in=10)
    assert invitations.requeue_lost_mail() == 0


def test_an_invitation_made_before_its_site_was_kept_is_left_to_its_admin(
    client, alice, letters, broker
):
    client.force_login(alice)
    lost_invitation(client, letters, "jane@example.org", broker, domain="")
    not_queued_invitation(client, letters, "kim@example.org", broker, domain="")
    assert invitations.requeue_lost_mail() == 0
    assert queued_mail(broker) == []


def test_an_invitation_sent_twice_is_mailed_once(client, alice, letters, broker, smtp_server):
    """The message was only slow, and the sweep sent another: the first to run mails it, the
    second finds it sent."""
    client.force_login(alice)
    invite(client, letters, "jane@example.org", deliver=False)  # the slow message
    slow = Invitation.objects.get()
    Invitation.objects.filter(pk=slow.pk).update(queued_at=Now() - OLD)
    assert invitations.requeue_lost_mail() == 1
    assert queued_mail(broker) == [slow.pk, slow.pk]
    assert run_queued("mail") == 2
    assert len(smtp_server.to("jane@example.org")) == 1
    sent = Invitation.objects.get(pk=slow.pk)
    assert (sent.mail_state, sent.mail_tries) == ("sent", 1)


def test_with_the_broker_down_the_invitation_stays_unclaimed(
    client, alice, letters, broker, broker_down
):
    client.force_login(alice)
    invite(client, letters, "jane@example.org", deliver=False)  # not queued: the broker is down
    Invitation.objects.update(mail_state="queued", queued_at=Now() - OLD)
    lost = Invitation.objects.get()
    with pytest.raises(OperationalError):
        invitations.requeue_lost_mail()
    # The claim went with the send: the next sweep, with the broker back, sends it.
    assert Invitation.objects.get(pk=lost.pk).queued_at == lost.queued_at


def test_a_mail_not_queued_is_sent_once_the_broker_answers(
    client, alice, letters, broker, smtp_server
):
    """Nobody pressed Re-send: the sweep sends it as it sends a lost one, once, and the
    account's limit then holds the admin's Re-send back as after any mail."""
    client.force_login(alice)
    missed = not_queued_invitation(client, letters, "jane@example.org", broker)
    young = not_queued_invitation(
        client, letters, "kim@example.org", broker, age=timedelta(minutes=1)
    )

    assert invitations.requeue_lost_mail() == 1
    assert queued_mail(broker) == [missed.pk]
    sent = Invitation.objects.get(pk=missed.pk)
    assert (sent.mail_state, sent.mail_error) == ("queued", "")
    assert sent.queued_at > missed.queued_at
    assert Invitation.objects.get(pk=young.pk).mail_state == "not_queued"
    assert invitations.requeue_lost_mail() == 0
    assert queued_mail(broker) == [missed.pk]

    assert run_queued("mail") == 1
    (mail,) = smtp_server.received
    assert mail.recipients == ["jane@example.org"]
    assert link_in(mail.body)
    assert Invitation.objects.get(pk=missed.pk).mail_state == "sent"
    again = invite(client, letters, "jane@example.org", deliver=False)
    assert again.status_code == 429
    assert Invitation.objects.filter(email="jane@example.org").count() == 1


def test_a_mail_not_queued_longer_ago_than_its_link_works_is_left_to_its_admin(
    client, alice, letters, broker, settings
):
    """On deploy, not-queued invitations months old are not mailed out of the blue: only those
    younger than PASSWORD_RESET_TIMEOUT are swept."""
    settings.PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600
    client.force_login(alice)
    stale = not_queued_invitation(client, letters, "jane@example.org", broker)
    Invitation.objects.filter(pk=stale.pk).update(created_at=Now() - timedelta(days=3, minutes=1))
    recent = not_queued_invitation(client, letters, "kim@example.org", broker)
    Invitation.objects.filter(pk=recent.pk).update(created_at=Now() - timedelta(days=2))
    assert invitations.requeue_lost_mail() == 1
    assert queued_mail(broker) == [recent.pk]
    left = Invitation.objects.get(pk=stale.pk)
    assert (left.mail_state, left.queued_at) == ("not_queued", stale.queued_at)


def test_with_the_broker_still_down_a_mail_not_queued_stays_so(
    client, alice, letters, broker, broker_down
):
    client.force_login(alice)
    invite(client, letters, "jane@example.org", deliver=False)  # not queued: the broker is down
    Invitation.objects.update(queued_at=Now() - OLD)
    missed = Invitation.objects.get()
    assert missed.mail_state == "not_queued"
    with pytest.raises(OperationalError):
        invitations.requeue_lost_mail()
    # The claim went with the send, and nothing was mailed: the next sweep sends it, and the
    # admin's Re-send meanwhile is not held back.
    left = Invitation.objects.get(pk=missed.pk)
    assert (left.mail_state, left.queued_at) == ("not_queued", missed.queued_at)
    assert cache.get(invitations.rate_key("account", missed.user_id)) is None


def test_a_mail_its_worker_sent_stays_sent_when_its_queuing_then_fails(
    client, alice, letters, broker, broker_down
):
    """delay() raised after the message went out, and the worker has sent it meanwhile: the
    not-queued path leaves it sent, and the account's limit held, so no sweep sends it again."""
    client.force_login(alice)
    invite(client, letters, "jane@example.org", deliver=False)  # not queued: the broker is down
    invitation = Invitation.objects.get()
    Invitation.objects.filter(pk=invitation.pk).update(
        mail_state="sent", mail_error="", mail_sent_at=Now(), queued_at=Now() - OLD
    )
    limit = invitations.rate_key("account", invitation.user_id)
    cache.set(limit, 1, timeout=invitations.RESEND_SECONDS)
    invitations.queue_invitation_mail(invitation)
    sent = Invitation.objects.get(pk=invitation.pk)
    assert (sent.mail_state, sent.mail_error) == ("sent", "")
    assert cache.get(limit) == 1
    assert invitations.requeue_lost_mail() == 0


def test_a_mail_not_queued_waits_while_its_account_was_mailed_minutes_ago(
    client, alice, letters, broker
):
    """An admin's Re-send under way (its invitation not committed yet) took the account's
    limit: the sweep leaves the mail, unclaimed, for a later sweep, which the Re-send's
    invitation will have replaced it for; it goes once the limit lets it."""
    client.force_login(alice)
    missed = not_queued_invitation(client, letters, "jane@example.org", broker)
    limit = invitations.rate_key("account", missed.user_id)
    cache.set(limit, 1, timeout=invitations.RESEND_SECONDS)
    assert invitations.requeue_lost_mail() == 0
    assert queued_mail(broker) == []
    left = Invitation.objects.get(pk=missed.pk)
    assert (left.mail_state, left.queued_at) == ("not_queued", missed.queued_at)
    cache.delete(limit)
    assert invitations.requeue_lost_mail() == 1
    assert queued_mail(broker) == [missed.pk]


def test_of_mails_not_queued_only_the_newest_of_an_account_is_sent(client, alice, letters, broker):
    """The admin pressed Re-send while the broker was still down: the older invitation's link
    is void, and its message would only spend the account's limit for the newer one."""
    client.force_login(alice)
    older = not_queued_invitation(client, letters, "jane@example.org", broker)
    invite(client, letters, "jane@example.org", deliver=False)
    newer = Invitation.objects.latest("pk")
    Invitation.objects.filter(pk=newer.pk).update(mail_state="not_queued", queued_at=Now() - OLD)
    cache.delete(invitations.rate_key("account", newer.user_id))
    broker.delete("mail")
    assert invitations.requeue_lost_mail() == 1
    assert queued_mail(broker) == [newer.pk]
    assert Invitation.objects.get(pk=older.pk).mail_state == "not_queued"


@pytest.fixture
def other_session():
    """A second connection to the test database: another sweep, or a worker."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as made:
        yield made


CLAIMS = {
    # Another sweep claimed it and is sending its message.
    "sweep": "UPDATE corpus_invitation SET queued_at = now() WHERE id = %s AND queued_at = %s",
    # A worker took the message the sweep thinks lost (send_invitation holds the row) and
    # sends the mail.
    "worker": "SELECT 1 FROM corpus_invitation WHERE id = %s AND queued_at = %s FOR UPDATE;"
    " UPDATE corpus_invitation SET mail_state = 'sent' WHERE id = %s",
}


@pytest.mark.parametrize("holder", CLAIMS)
@pytest.mark.django_db(transaction=True)
def test_an_invitation_another_holds_is_not_sent_again(
    client, alice, letters, broker, other_session, holder
):
    """The other has the row and has not committed yet: this sweep waits for it, then finds
    the invitation claimed, or sent, and sends nothing."""
    client.force_login(alice)
    lost = lost_invitation(client, letters, "jane@example.org", broker)
    other_session.execute("BEGIN")
    first, _, second = CLAIMS[holder].partition("; ")
    assert other_session.execute(first, [lost.pk, lost.queued_at]).rowcount == 1
    if second:
        other_session.execute(second, [lost.pk])
    assert once_another_session_commits(invitations.requeue_lost_mail, other_session) == 0
    assert queued_mail(broker) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_mail_worker_sweeps_a_lost_invitation_and_mails_it(
    client, alice, letters, broker, smtp_server
):
    """Nothing in the queue (Redis restarted): the worker's own sweep, at its start, sends the
    message, and the worker mails the invitation. The link the admin was shown when inviting
    still works after the mail went with a link of its own: either works, once."""
    client.force_login(alice)
    lost = lost_invitation(client, letters, "jane@example.org", broker)
    shown = shown_link(client.get(members_url(letters)).content.decode())
    with celery_worker(
        MAIL_WORKER_QUEUES, name="mail", answers_first=False, EMAIL_URL=smtp_server.url
    ):
        (mail,) = wait_for(lambda: smtp_server.to("jane@example.org"), 120)
        wait_for(lambda: Invitation.objects.filter(pk=lost.pk, mail_state="sent").exists())
    assert len(smtp_server.received) == 1
    _, _, done = choose_password(shown)
    assert "Password set" in done.content.decode()
    mailed = Client().get(link_in(mail.body), follow=True).content.decode()
    assert "This link no longer works" in mailed
