"""The `mail` workers' sweep (invitations.requeue_lost_mail) sends invitations whose mail was not
queued too: its partial index holds them beside the queued ones, the few among every invitation
ever sent."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0029_invitation_queued_at"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="invitation",
            name="invitation_queued",
        ),
        migrations.AddIndex(
            model_name="invitation",
            index=models.Index(
                condition=models.Q(("mail_state__in", ["queued", "not_queued"])),
                fields=["queued_at"],
                name="invitation_queued",
            ),
        ),
    ]
