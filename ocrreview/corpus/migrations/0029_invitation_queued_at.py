"""Invitation.domain and use_https: the site its link is made for, kept so that the sweep can
send a lost message again (invitations.requeue_lost_mail); queued_at: when its message was last
sent. Each column has a database default, for the version before inserts invitations without
them while this runs beside it; an invitation made so has no site, and the sweep leaves it to its
admin's Re-send."""

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0028_model_version_from_training"),
    ]

    operations = [
        migrations.AddField(
            model_name="invitation",
            name="domain",
            field=models.CharField(db_default="", max_length=255),
        ),
        migrations.AddField(
            model_name="invitation",
            name="use_https",
            field=models.BooleanField(db_default=False),
        ),
        migrations.AddField(
            model_name="invitation",
            name="queued_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
        migrations.AddIndex(
            model_name="invitation",
            index=models.Index(
                condition=models.Q(("mail_state", "queued")),
                fields=["queued_at"],
                name="invitation_queued",
            ),
        ),
    ]
