"""Invitations to a collection by email, and the password resets whose links they reuse.

An invitation to an address no account uses makes the account (username from the address,
no password) and its membership, and mails a link to choose a password: the password-reset
link of Django's token generator, which works once and for PASSWORD_RESET_TIMEOUT seconds
(and no longer once the account is made a site admin: `account_links`). The inviting admin is
shown such a link too, for a site whose mail goes nowhere (the file-based default) or fails:
made apart from the mailed one, with a token of its own, and either works until one of them
sets the password. Shown only when the invitation made the account: a link to an account
that was there before goes to its own address alone. A password chosen through the shown
link proves nothing of the address (`UnprovenAddress`), so later invitations of the address
do not add that account until a link mailed to it is used. A shown link works until the account is
made a member otherwise (invited again, added by its username): a membership another admin
decides on is not to be had with it.
"""

import itertools
import logging
import math
import re
import smtplib
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Now
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from kombu.exceptions import OperationalError as BrokerUnreachable

from ocrreview.corpus.actions import AlreadyAMember, MembershipError, do_add_member
from ocrreview.corpus.audit import member_label
from ocrreview.corpus.logins import TooManyRequests, record_failure, refusal
from ocrreview.corpus.models import (
    Collection,
    CollectionEvent,
    Invitation,
    Membership,
    UnprovenAddress,
)
from ocrreview.sweep import LeftForLater, send_lost

logger = logging.getLogger(__name__)


class InvitationError(MembershipError):
    """An address that cannot be invited; the message says why."""


class Throttled(InvitationError):
    """Too many invitations now; the message says when to try again, `retry_after` within how
    many seconds at most (the limit's window, counted from its first)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Invited:
    user: Any  # the user model, as get_user_model() gives it
    role: str  # their role in the collection: an invitation sent again keeps the one they have
    added: bool  # a new membership (False: a pending invitation sent again)
    # This very call made the account: only then may the inviting admin be shown the link
    # to choose its password. Any other account's link goes to its own address alone.
    created: bool
    # The account is pending (is_pending): it is mailed a link to choose a password. An
    # account in use is only added, as by its username.
    needs_password: bool
    # The mail to send, queued by `invite` once this is committed; None without one.
    invitation: Invitation | None = None


# Each admin's invitations, whatever they find (a bound on mail sent and on addresses tried),
# and the links mailed to one account: one per RESEND_SECONDS, since each is a mail of the
# admin's choosing in its owner's mailbox.
INVITATIONS_PER_ADMIN = 30
INVITATIONS_PER_ADMIN_SECONDS = 3600
RESEND_SECONDS = 600


def rate_key(kind: str, identity: object) -> str:
    return f"invitations:{kind}:{identity}"


def _take(kind: str, identity: object, limit: int, seconds: int) -> bool:
    """Whether one more is within `limit` per `seconds` (counted from the first), as
    tokens.take_creation_slot counts."""
    key = rate_key(kind, identity)
    cache.add(key, 0, timeout=seconds)
    return cache.incr(key) <= limit


def accounts_using(email: str, **filters) -> list:
    """The accounts whose address is `email`, in any case."""
    User = get_user_model()
    field = User.get_email_field_name()
    found = User._default_manager.filter(**{f"{field}__iexact": email}, **filters).order_by("pk")
    return [user for user in found if same_address(getattr(user, field), email)]


def same_address(a: str, b: str) -> bool:
    """Addresses compared as the database's iexact cannot: Unicode case folding."""
    return (
        unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()
    )


def is_pending(user) -> bool:
    """An account nobody has used: no password yet, never logged in, no API token (whose
    requests set no last login), no site admin. Only such an account is mailed a link to
    choose its password by an invitation; one in use is its owner's, whom a password reset
    lets in."""
    return (
        not user.has_usable_password()
        and user.last_login is None
        and not (user.is_staff or user.is_superuser)
        and not user.api_tokens.exists()
    )


def retire_links(user) -> None:
    """Every link made to choose the account's password stops working: a new unusable password
    is a new hash, which the links' tokens are made of."""
    user.set_unusable_password()
    user.save(update_fields=["password"])


@transaction.atomic
def do_invite_member(
    collection: Collection, email: str, name: str, role: str, *, actor, domain: str, use_https: bool
) -> Invited:
    """Make `email` a member of the collection with `role`: the active account that uses the
    address, or a new one without a password (named `name`). A pending account is mailed a
    new link to choose its password, on the site at `domain`, which makes its earlier links fail; a pending member
    is invited again so, at most once per RESEND_SECONDS. Any other member already is
    refused. The membership is recorded as do_add_member records it, with the address it was
    sent to; an invitation sent again, in that record.

    A collection's admin learns no more of the site's accounts than adding by username tells:
    an address that cannot be invited (a deactivated account's, or several accounts') gets one
    answer that names no account. Site admins are told why."""
    if not _take("admin", actor.pk, INVITATIONS_PER_ADMIN, INVITATIONS_PER_ADMIN_SECONDS):
        raise Throttled(
            "You sent many invitations in the last hour; try again later.",
            INVITATIONS_PER_ADMIN_SECONDS,
        )
    detail = actor.is_staff or actor.is_superuser
    site = {"domain": domain, "use_https": use_https}
    # Two invitations of one new address at once would each find no account and make two.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"invite:{unicodedata.normalize('NFKC', email).casefold()}"],
        )
    accounts = accounts_using(email)
    refused = f"{email} cannot be invited; add the person by their username, or ask a site admin."
    if len(accounts) > 1:
        names = ", ".join(user.get_username() for user in accounts)
        raise InvitationError(
            f"Several accounts use {email} ({names}); add the one you mean by its username."
            if detail
            else refused
        )
    if not accounts:
        user = _new_account(email, name)
        _take("account", user.pk, 1, RESEND_SECONDS)
        do_add_member(
            collection, user, role, actor=actor, invited={"email": email, "new_account": True}
        )
        return Invited(
            user,
            role,
            added=True,
            created=True,
            needs_password=True,
            invitation=_mail_to_send(collection, user, email, actor, site, reported=True),
        )
    user = accounts[0]
    if not user.is_active:
        raise InvitationError(
            f"{email} is the address of {user.get_username()}, whose account is "
            "deactivated; a site admin can reactivate it."
            if detail
            else refused
        )
    pending = is_pending(user)
    membership = Membership.objects.filter(collection=collection, user=user).first()
    if membership is not None and not pending:
        raise AlreadyAMember(
            f"{user.get_username()} is already a member of {collection} "
            f"({Membership.Role(membership.role).label.lower()})."
            if detail
            else f"{email} is already a member of {collection}."
        )
    if not pending and UnprovenAddress.objects.filter(user=user).exists():
        # Its password was chosen through a link an admin was shown: perhaps by that admin,
        # who would be let into this collection by the address of someone they invited.
        raise InvitationError(
            f"{email} is the address of {user.get_username()}, whose password was chosen "
            "through the link shown to the admin who invited it, never through one mailed to "
            "the address; add it by its username if you know it is theirs, or ask its owner "
            "to reset their password, which mails them a link."
            if detail
            else refused
        )
    if pending:
        # Every link made before, shown to whichever admin, stops working, whether or not a
        # new one is mailed: this invitation's membership is not to be had with one of them.
        retire_links(user)
    if pending and not _take("account", user.pk, 1, RESEND_SECONDS):
        if membership is not None:
            minutes = RESEND_SECONDS // 60
            raise Throttled(
                f"An invitation was sent to {email} less than {minutes} minutes ago; "
                "try again later.",
                RESEND_SECONDS,
            )
        # Added all the same, as an account in use would be: no link mailed this time (its
        # owner asks for a password reset, which the dead link's page offers), and nothing
        # told of its mailbox.
        logger.info("invitation mail to %s not sent: one was sent in the last minutes", user)
        pending = False
    if membership is not None:
        _record_sent_again(collection, user, actor)
        return Invited(
            user,
            membership.role,
            added=False,
            created=False,
            needs_password=True,
            invitation=_mail_to_send(collection, user, email, actor, site, reported=True),
        )
    do_add_member(
        collection, user, role, actor=actor, invited={"email": email, "new_account": False}
    )
    # An account that was there before, added now: whether it was mailed (whether it is
    # pending) is not told to a collection's admin.
    mail = _mail_to_send(collection, user, email, actor, site, reported=False) if pending else None
    return Invited(user, role, added=True, created=False, needs_password=pending, invitation=mail)


def do_retire_links_shown_to(collection: Collection, admin, *, actor) -> None:
    """An admin removed from the collection, or made a reviewer, keeps the links they were shown
    to the accounts they invited to it, and with one would be back in as the invitee. Every
    link of such an account still pending stops working; one still a member is mailed a new
    one (the link mailed before stopped too)."""
    invitations = (
        Invitation.objects.filter(collection=collection, invited_by=admin)
        .select_related("user")
        .order_by("user_id", "-created_at")
        .distinct("user_id")
    )
    for invitation in invitations:
        user = invitation.user
        if not is_pending(user):
            continue
        retire_links(user)
        if Membership.objects.filter(collection=collection, user=user).exists():
            site = {"domain": invitation.domain, "use_https": invitation.use_https}
            mail = _mail_to_send(
                collection, user, invitation.email, actor, site, reported=invitation.reported
            )
            transaction.on_commit(lambda mail=mail: queue_invitation_mail(mail))


def _mail_to_send(
    collection: Collection, user, email: str, actor, site: dict, *, reported: bool
) -> Invitation:
    return Invitation.objects.create(
        collection=collection, user=user, email=email, invited_by=actor, reported=reported, **site
    )


def _record_sent_again(collection: Collection, user, actor) -> None:
    """In the event of the invitation that added them: when it was sent again, and by whom."""
    event = (
        CollectionEvent.objects.select_for_update()
        .filter(
            collection=collection,
            event_type=CollectionEvent.Type.MEMBER_ADDED,
            extra_data__member__id=user.pk,
        )
        .order_by("-pk")
        .first()
    )
    logger.info("invitation of %s to collection %s sent again by %s", user, collection.pk, actor)
    if event is None or "invited" not in event.extra_data:
        return
    event.extra_data["invited"].setdefault("sent_again", []).append(
        {"at": timezone.now().isoformat(), "actor": member_label(actor)}
    )
    event.save(update_fields=["extra_data"])


def _new_account(email: str, name: str):
    User = get_user_model()
    manager: Any = User._default_manager  # a UserManager, which the stubs cannot know
    for n in itertools.count(1):
        username = _username(email, n)
        # Told apart from an existing name by case alone, it would be mistaken for it.
        if User._default_manager.filter(username__iexact=username).exists():
            continue
        try:
            # A savepoint: the same name taken meanwhile by another address fails this insert
            # alone, and the next number is tried.
            with transaction.atomic():
                # No password: an unusable one, until the link sets it. The whole name goes in
                # first_name, as names do not split into first and last everywhere.
                return manager.create_user(
                    username=username, email=email, password=None, first_name=name
                )
        except IntegrityError:
            continue
    raise AssertionError("unreachable")


def _username(email: str, n: int) -> str:
    """The address's local part, in the characters usernames allow (`jane.doe`), numbered from
    the second (`jane.doe2`). Not the whole address: usernames are shown to other members."""
    local = re.sub(r"[^\w.+-]", "", email.rpartition("@")[0])[:140] or "member"
    return local if n == 1 else f"{local}{n}"


class AccountLinkTokenGenerator(PasswordResetTokenGenerator):
    """Django's password-reset tokens, void too once the account is made staff or superuser:
    the collection admin who invited a pending account was shown its link, which must not
    become a way into a site admin's account when a site admin promotes it before its owner
    chose a password."""

    def _make_hash_value(self, user, timestamp: int) -> str:
        # Nothing added for an ordinary account, whose links made before this class stay good.
        promoted = ("staff" if user.is_staff else "") + ("superuser" if user.is_superuser else "")
        return super()._make_hash_value(user, timestamp) + promoted


class ShownLinkTokenGenerator(AccountLinkTokenGenerator):
    """The tokens of the links shown to the inviting admin, told apart from mailed ones."""

    key_salt = "ocrreview.corpus.invitations.ShownLinkTokenGenerator"


account_links = AccountLinkTokenGenerator()
shown_links = ShownLinkTokenGenerator()


def absolute_url(path: str, domain: str, use_https: bool) -> str:
    """A link to this site for a mail sent by a worker, which has no request to build it."""
    return f"{'https' if use_https else 'http'}://{domain}{path}"


def set_password_path(user, links: AccountLinkTokenGenerator = account_links) -> str:
    """The path of the link that lets `user` choose a password: once, for
    PASSWORD_RESET_TIMEOUT seconds (the token is made of the password's hash and the last
    login, which using it changes)."""
    return reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": links.make_token(user),
        },
    )


MAIL_ERRORS = (smtplib.SMTPException, OSError, BadHeaderError)
# Why a mail was not queued, for the admin, who may send it again.
NOT_QUEUED = "our mail queue could not be reached"


@dataclass
class Sent:
    """An invitation made, as the members page and the API answer it."""

    invited: Invited
    # The link to choose the password, for the inviting admin to pass on: only of an account
    # this invitation made ("" otherwise: any other account's link is its owner's alone).
    link: str
    # Its mail, where the admin may know that one is sent (None otherwise: of an account that
    # was there before and is added now, whether it is mailed is not told).
    invitation: Invitation | None

    @property
    def sent_again(self) -> bool:
        """To the admin's own pending member: nothing changed but the link."""
        return not self.invited.added


def invite(request, collection: Collection, email: str, name: str, role: str) -> Sent:
    """do_invite_member by the request's user, then its mail to the account that needs a link
    to choose a password, queued for a worker of the `mail` queue (tasks.mail_invitation): a
    mail server slow or down holds no request. The broker down keeps the member, the
    invitation saying that its mail was not queued."""
    invited = do_invite_member(
        collection,
        email,
        name,
        role,
        actor=request.user,
        domain=request.get_host(),
        use_https=request.is_secure(),
    )
    invitation = invited.invitation
    if invitation is None:
        return Sent(invited, link="", invitation=None)
    queue_invitation_mail(invitation)
    link = (
        request.build_absolute_uri(set_password_path(invited.user, shown_links))
        if invited.created
        else ""
    )
    return Sent(invited, link=link, invitation=invitation if invitation.reported else None)


def queue_invitation_mail(invitation: Invitation) -> None:
    """Queued once the invitation is committed, for the worker to find it. Without a broker the
    account and membership stay, as with a mail server that fails: the admin of an account the
    invitation made has its link, and sends the mail again from the members page."""
    # Imported here: tasks imports this module.
    from ocrreview.corpus.tasks import mail_invitation

    try:
        mail_invitation.delay(invitation.pk, invitation.domain, invitation.use_https)
    except BrokerUnreachable as exc:  # kombu's, whatever the transport raised
        logger.error("invitation %s not queued, the broker cannot be reached: %r", invitation, exc)
        # Only while still queued: delay() may raise after the message went out, and a worker
        # that has sent it since must not see it turned back into one for the sweep to send.
        if Invitation.objects.filter(
            pk=invitation.pk, mail_state=Invitation.MailState.QUEUED
        ).update(mail_state=Invitation.MailState.NOT_QUEUED, mail_error=NOT_QUEUED):
            invitation.mail_state = Invitation.MailState.NOT_QUEUED
            invitation.mail_error = NOT_QUEUED
            # Nothing was mailed: sending it again is not held back as a mail minutes ago is.
            cache.delete(rate_key("account", invitation.user_id))


def send_invitation(invitation_id: int, domain: str, use_https: bool) -> None:
    """Mail the invitation, with a link made now to choose a password on the site at `domain`;
    raises what the mail server raised (MAIL_ERRORS). The row is locked while it is sent, so
    that a copy of the message (the broker gives one again after an hour, the sweep sends one
    when it takes a slow message for lost) finds it sent, and is mailed once.
    Not sent, and cancelled, where the link is no longer the invitation's to give: the account
    chose its password or was given a later invitation, or the member was removed."""
    # The sweep counts from this try, committed apart from the send: a failing send rolls its
    # transaction back, and until the worker records the failure (record_mail_failure moving
    # queued_at to the retry) the row, released, would otherwise look lost since its message
    # was sent, and the sweep would start a second chain of tries.
    Invitation.objects.filter(pk=invitation_id, mail_state=Invitation.MailState.QUEUED).update(
        queued_at=Now()
    )
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("collection", "user", "invited_by")
            .filter(pk=invitation_id)
            .first()
        )
        if invitation is None or invitation.mail_state != Invitation.MailState.QUEUED:
            return  # its collection deleted, or sent by a copy of this message
        user = invitation.user
        if (
            not user.is_active
            or not is_pending(user)
            or Invitation.objects.filter(user=user, pk__gt=invitation.pk).exists()
            or not Membership.objects.filter(collection=invitation.collection, user=user).exists()
        ):
            invitation.mail_state = Invitation.MailState.CANCELLED
            invitation.save(update_fields=["mail_state"])
            return
        inviter = invitation.invited_by
        context = {
            "collection": invitation.collection,
            "user": user,
            # Its admin's account deleted since: the mail names none.
            "inviter": (inviter.get_full_name() or inviter.get_username())
            if inviter
            else "An admin",
            "link": absolute_url(set_password_path(user), domain, use_https),
            "login": absolute_url(reverse("login"), domain, use_https),
            "days": math.ceil(settings.PASSWORD_RESET_TIMEOUT / 86400),
        }
        rendered = render_to_string("registration/invitation_subject.txt", context)
        # One line, as Django's PasswordResetForm makes it: a name with a line break in it (the
        # inviter's, the collection's) would otherwise be refused by the mail as a header
        # injection.
        subject = "".join(rendered.splitlines()).strip()
        body = render_to_string("registration/invitation_email.txt", context)
        EmailMultiAlternatives(subject, body, to=[user.email]).send()
        invitation.mail_state, invitation.mail_error = Invitation.MailState.SENT, ""
        invitation.mail_sent_at = timezone.now()
        invitation.mail_tries += 1
        invitation.save(update_fields=["mail_state", "mail_error", "mail_sent_at", "mail_tries"])


def record_mail_failure(
    invitation_id: int, exc: Exception, *, final: bool, retry_in: int = 0
) -> None:
    """A try that failed, with the mail server's reason; `final`: no try follows, else the
    next is due in `retry_in` seconds. The sweep counts from then: the retry's message waits
    on its worker until it is due (at most 128 times OCRREVIEW_MAIL_RETRY_SECONDS), and is not
    lost."""
    logger.warning("invitation %s not sent (final: %s): %r", invitation_id, final, exc)
    Invitation.objects.filter(pk=invitation_id, mail_state=Invitation.MailState.QUEUED).update(
        mail_error=str(exc) or type(exc).__name__,
        mail_tries=F("mail_tries") + 1,
        mail_state=Invitation.MailState.FAILED if final else Invitation.MailState.QUEUED,
        queued_at=Now() + timedelta(seconds=retry_in),
    )


def requeue_lost_mail() -> int:
    """The `mail` workers' sweep (ocrreview/sweep.py): send the message of each invitation
    whose mail is still queued sweep.lost_after() after its message was sent, or its retry due,
    again: Redis restarted without its data, or the web process died between committing the
    invitation and queuing its mail. And the message of each whose mail was not queued (the
    broker down when it was made) as long ago, once the broker answers. Claimed as
    sweep.send_lost claims: a worker sending it holds its row, and once that commits it is
    sent, and the claim matches nothing. An invitation made before its site was kept (corpus
    0029), or not queued longer ago than its link would have worked (PASSWORD_RESET_TIMEOUT),
    is left to its admin's Re-send. How many were sent."""
    queued = Invitation.objects.filter(mail_state=Invitation.MailState.QUEUED)
    not_queued = Invitation.objects.filter(mail_state=Invitation.MailState.NOT_QUEUED)
    # Only the account's newest: a later invitation replaced an older one, whose worker would
    # only cancel it, its message spending the account's re-send limit for nothing.
    newer = Invitation.objects.filter(user=OuterRef("user"), pk__gt=OuterRef("pk"))
    return send_lost(queued, _send_again, queued.exclude(domain="")) + send_lost(
        not_queued,
        _send_not_queued,
        # A mail its admin would no longer expect, weeks after the invitation, is left to them.
        not_queued.exclude(domain="")
        .exclude(Exists(newer))
        .filter(created_at__gt=Now() - timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)),
        mail_state=Invitation.MailState.QUEUED,
        mail_error="",
    )


def _send_again(invitation: Invitation, why: str = "its message was lost") -> None:
    # Imported here: tasks imports this module.
    from ocrreview.corpus.tasks import mail_invitation

    mail_invitation.delay(invitation.pk, invitation.domain, invitation.use_https)
    logger.warning("invitation %s sent again: %s", invitation.pk, why)


def _send_not_queued(invitation: Invitation) -> None:
    """Within the account's limit of one link mailed per RESEND_SECONDS, which its not queued
    mail gave back (queue_invitation_mail): an admin's Re-send in the last minutes leaves this
    one for a later sweep (it replaced it), and once this one is sent, an admin's Re-send
    waits as after any mail."""
    if not _take("account", invitation.user_id, 1, RESEND_SECONDS):
        raise LeftForLater
    try:
        _send_again(invitation, "its mail was not queued")
    except Exception:
        cache.delete(rate_key("account", invitation.user_id))  # nothing was sent
        raise


def pending_invitations(collection: Collection) -> dict[int, Invitation]:
    """The collection's newest invitation of each member who has not chosen a password yet,
    by user id, whose mail its admins are told of."""
    newest = (
        Invitation.objects.filter(
            collection=collection,
            user__memberships__collection=collection,
            user__password__startswith=UNUSABLE_PASSWORD_PREFIX,
            user__last_login=None,
        )
        .select_related("user")
        .order_by("user_id", "-pk")
        .distinct("user_id")
    )
    return {i.user_id: i for i in newest if i.reported and is_pending(i.user)}


# --- Password reset ----------------------------------------------------------------------


class ResetForm(PasswordResetForm):
    """Django's, with the limit on failed logins: each request counts, per address asked for
    and per client address, as it sends a mail (a flood of resets is a flood of mail to a
    victim). A pending invitee is found too: their invitation's link may have run out, and
    their address is the only way in. Unknown addresses get the same answer as known ones,
    in the same time: the request only queues the address for a worker
    (tasks.mail_password_reset), which looks for its accounts and mails them."""

    def __init__(self, *args, request, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.retry_after: int | None = None

    def clean(self):
        super().clean()
        email = self.cleaned_data.get("email")
        if email:
            # Apart from logins with a username that happens to be the address.
            identity = f"password reset {email.casefold()}"
            refused = refusal(self.request, identity)
            if refused:
                self.retry_after = refused[0]
                minutes = math.ceil(refused[0] / 60)
                raise ValidationError(
                    f"Too many attempts from your address or for this email: try again in "
                    f"{minutes} minute{'s' if minutes != 1 else ''}.",
                    code="throttled",
                )
            record_failure(self.request, identity)
        return self.cleaned_data

    def save(self, *, request, use_https=False, **kwargs) -> None:
        """Queues the mail, whatever the address finds: the accounts are looked for by the
        worker, so that the request takes as long for an unknown address as for a known one
        (an SMTP round trip, or only a query, in the request would tell them apart). Raises
        the broker's error when it cannot be reached."""
        # Imported here: tasks imports this module.
        from ocrreview.corpus.tasks import mail_password_reset

        mail_password_reset.delay(self.cleaned_data["email"], request.get_host(), use_https)


def password_reset_accounts(email: str) -> list[int]:
    """The active accounts that use `email` (a pending invitee's too), each mailed a link."""
    return [user.pk for user in accounts_using(email, is_active=True)]


def send_password_reset(user_id: int, domain: str, use_https: bool) -> None:
    """Mail the account a link to choose a new password, on the site at `domain`; raises what
    the mail server raised (MAIL_ERRORS). The link is made here, when the mail is sent: it
    works once, for PASSWORD_RESET_TIMEOUT."""
    user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    address = getattr(user, user.get_email_field_name())
    context = {
        "email": address,
        "domain": domain,
        "site_name": domain,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "user": user,
        "token": account_links.make_token(user),
        "protocol": "https" if use_https else "http",
    }
    rendered = render_to_string(PasswordResetView.subject_template_name, context)
    subject = "".join(rendered.splitlines())  # a header is one line
    body = render_to_string(PasswordResetView.email_template_name, context)
    EmailMultiAlternatives(subject, body, to=[address]).send()


class PasswordResetView(TooManyRequests, auth_views.PasswordResetView):
    form_class = ResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except BrokerUnreachable as exc:  # kombu's, whatever the transport raised
            # Whatever the address: the mail of a known one and the nothing of an unknown one
            # are both queued, and both fail alike.
            logger.error("password reset not queued, the broker cannot be reached: %r", exc)
            form.add_error(
                None,
                "The link cannot be sent just now (our mail queue is down); "
                "try again in a few minutes.",
            )
            return self.render_to_response(self.get_context_data(form=form), status=503)


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """Django's page that a link to choose a password opens, taking the links mailed to the
    account's address and those shown to the admin who invited it; a password chosen through
    a shown link leaves the address unproven, one chosen through a mailed link proves it."""

    token_generator: AccountLinkTokenGenerator = account_links

    def dispatch(self, *args, **kwargs):
        user = self.get_user(kwargs["uidb64"])
        token = kwargs["token"]
        if token == self.reset_url_token:
            token = self.request.session.get(auth_views.INTERNAL_RESET_SESSION_TOKEN, "")
        if user is not None and shown_links.check_token(user, token):
            self.token_generator = shown_links
        return super().dispatch(*args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        if self.token_generator is shown_links:
            UnprovenAddress.objects.get_or_create(user=form.user)
        else:
            UnprovenAddress.objects.filter(user=form.user).delete()
        return response
