"""Invitations' and password resets' mail on a `mail` queue of its own, sent by real Celery
workers through a real SMTP server (aiosmtpd): the workers `manage.py serve` starts, with the
queues it gives them, mail a reset and an invitation while a long task holds the `default`
queue's worker; an invitation's mail refused for now is tried again, and the members page
says when it was sent."""

import uuid

import pytest
from django.urls import reverse

from ocrreview.celery import app
from ocrreview.corpus.management.commands.serve import MAIL_WORKER_QUEUES, MAIN_WORKER_QUEUES
from ocrreview.corpus.models import Invitation
from tests import hold_task
from tests.foundation import test_password_reset as reset
from tests.workers import celery_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The password reset tests' fixtures (the first, autouse).
_logins, address, broker, erin = reset._logins, reset.address, reset.broker, reset.erin
ask, wait_for = reset.ask, reset.wait_for


def test_mail_tasks_are_routed_to_the_mail_queue():
    route = app.amqp.router.route
    for task in ("mail_password_reset", "mail_password_reset_link", "mail_invitation"):
        assert route({}, f"ocrreview.corpus.tasks.{task}")["queue"].name == "mail"
    assert route({}, "tests.hold_default")["queue"].name == "default"


def test_every_queue_has_a_worker_under_manage_py_serve():
    """A queue no worker of `make run` reads would keep its tasks for ever."""
    served = {*MAIN_WORKER_QUEUES.split(","), *MAIL_WORKER_QUEUES.split(","), "training"}
    assert served == {queue.name for queue in app.conf.task_queues}
    assert "mail" not in MAIN_WORKER_QUEUES.split(",")


def invite(client, collection, email):
    return client.post(
        reverse("invite_member", args=[collection.pk]),
        {"email": email, "name": "", "role": "reviewer"},
    )


def test_mail_is_sent_while_a_long_task_holds_the_default_queue(
    client, erin, address, alice, letters, smtp_server, broker
):
    key = f"hold-{uuid.uuid4().hex}"
    include = {"include": "tests.hold_task"}
    with (
        celery_worker(MAIN_WORKER_QUEUES, name="main", pool="prefork", timeout=120, **include),
        celery_worker(MAIL_WORKER_QUEUES, name="mail", EMAIL_URL=smtp_server.url),
    ):
        hold_task.hold_default.delay(key)
        wait_for(lambda: hold_task.started(key), timeout=120)

        assert ask(client, erin.email, address).status_code == 302
        client.force_login(alice)
        assert invite(client, letters, "jane@example.org").status_code == 302
        wait_for(lambda: smtp_server.to(erin.email) and smtp_server.to("jane@example.org"))
        # Both sent while the main worker's one process is still held.
        assert not hold_task.done(key)
        hold_task.release(key)
        wait_for(lambda: hold_task.done(key))


def test_an_invitation_refused_for_now_is_tried_again_and_the_page_says_it_was_sent(
    client,
    alice,
    letters,
    smtp_server,
    broker,  # noqa: F811 (a fixture)
):
    smtp_server.refusals = 1
    client.force_login(alice)
    members = reverse("collection_members", args=[letters.pk])
    with celery_worker(MAIL_WORKER_QUEUES, name="mail", EMAIL_URL=smtp_server.url):
        assert invite(client, letters, "kim@example.org").status_code == 302
        # Refused once: the page says why, and that it is tried again.
        wait_for(lambda: Invitation.objects.filter(mail_tries=1).exists())
        page = client.get(members).content.decode()
        assert 'data-state="queued">mail not sent yet (' in page and "trying again" in page
        (mail,) = wait_for(lambda: smtp_server.to("kim@example.org"))
        wait_for(lambda: Invitation.objects.filter(mail_state="sent").exists())
    assert smtp_server.refused == 1
    assert 'data-state="sent">mail sent' in client.get(members).content.decode()
    (invitation,) = Invitation.objects.all()
    assert invitation.mail_tries == 2 and invitation.mail_error == ""
    assert "http://testserver/accounts/password/reset/" in mail.body
