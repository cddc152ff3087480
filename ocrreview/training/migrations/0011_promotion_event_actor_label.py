"""A promotion event keeps who decided as they were then (actor_label), so that the account of
an admin who overrode the gate can be deleted: actor is SET_NULL, no longer PROTECT."""

import django.db.models.deletion
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import migrations, models


def label_actors(apps, schema_editor):
    PromotionEvent = apps.get_model("training", "PromotionEvent")
    # A historical model has no USERNAME_FIELD; the account model's class says which it is.
    username_field = get_user_model().USERNAME_FIELD
    for event in PromotionEvent.objects.filter(actor__isnull=False).select_related("actor"):
        username = getattr(event.actor, username_field)
        # update(): the model's save refuses to change an event.
        PromotionEvent.objects.filter(pk=event.pk).update(
            actor_label={"id": event.actor_id, "username": username}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0010_provisional_evaluation_split"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="promotionevent",
            name="actor_label",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RunPython(label_actors, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="promotionevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
