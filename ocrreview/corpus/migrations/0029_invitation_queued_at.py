"""Invitation.domain and use_https: the site its link is made for, kept so that the sweep can
send a lost message again (invitations.requeue_lost_mail); queued_at: when its message was last
sent. An invitation made before counts from when it was made, and has no site: the sweep leaves
it to its admin's Re-send."""

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
            field=models.CharField(default="", max_length=255),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="invitation",
            name="use_https",
            field=models.BooleanField(default=False),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="invitation",
            name="queued_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
        migrations.RunSQL(
            "UPDATE corpus_invitation SET queued_at = created_at", migrations.RunSQL.noop
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
