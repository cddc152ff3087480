"""The reviewer statistics per day (models.ReviewerLineDay, models.ReviewerDay), kept by the
trail's trigger of migration 0008, whose function now also counts each settling record on its
day, and filled from the trail as it stands.

A day is the calendar day of the record's created_at in settings.TIME_ZONE as it is when this
runs, written into the function as a constant: no lookup per save, and the same day whichever
session's time zone inserts. review.reviewer_days recounts in another zone when TIME_ZONE
changes (after every migrate). Per day the counts are 0008's, with the day in every key: a line
once per person and day, changed if a save of theirs that day changed it, timed if one was
timed, and the time of every timed save. An undo is a revert by the person undoing, on its day;
the work it undid stays counted where it was done, as in the running totals.

The function's second statement runs after the running totals', so that rows are locked in one
order, table by table, each in key order: two transactions never wait for each other in a
circle. Replacing a function takes no lock on the trail, so the trail is locked for writes
first, as 0008's CREATE TRIGGER locked it: no insert is counted twice or missed by the backfill.
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

totals = importlib.import_module("ocrreview.review.migrations.0008_reviewer_totals")
SETTLING, BITS = totals.SETTLING, totals.BITS
# 0008's statement, as it was, comes first in the new function; its function, as it was, is what
# reversing this migration puts back.
TOTALS_STATEMENT = totals.CREATE.split("BEGIN", 1)[1].split("RETURN NULL;", 1)[0]
RESTORE = totals.CREATE.split("CREATE TRIGGER", 1)[0].replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
)
LOCK = "LOCK TABLE review_correction IN SHARE ROW EXCLUSIVE MODE;"


def _literal(zone: str) -> str:
    return "'" + zone.replace("'", "''") + "'"


def day_of(zone: str) -> str:
    return f"(c.created_at AT TIME ZONE {_literal(zone)})::date"


def count_days(zone: str) -> str:
    """The trigger's function, counting days in `zone`; and review_day_zone(), which says
    which zone that is."""
    return f"""
CREATE OR REPLACE FUNCTION review_day_zone() RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT {_literal(zone)}::text $$;
CREATE OR REPLACE FUNCTION review_count_settled() RETURNS trigger AS $$
BEGIN{TOTALS_STATEMENT}
    WITH settled AS (
        SELECT c.line_id, c.user_id, l.collection_id, {day_of(zone)} AS day, {BITS} AS bits,
               sum(c.time_spent_ms) AS ms
        FROM added c JOIN corpus_line l ON l.id = c.line_id
        WHERE c.action IN {SETTLING}
        GROUP BY c.line_id, c.user_id, l.collection_id, day
    ), counted AS (
        INSERT INTO review_reviewerlineday AS r (line_id, user_id, day, counted, newly_counted)
        SELECT line_id, user_id, day, bits, bits FROM settled ORDER BY line_id, user_id, day
        ON CONFLICT (line_id, user_id, day) DO UPDATE
            SET counted = r.counted | EXCLUDED.counted,
                newly_counted = EXCLUDED.counted & ~r.counted
            WHERE EXCLUDED.counted & ~r.counted <> 0
        RETURNING r.line_id, r.user_id, r.day, r.newly_counted AS bits
    )
    INSERT INTO review_reviewerday AS t
        (collection_id, day, user_id, lines, changed, timed_lines, time_spent_ms)
    SELECT s.collection_id, s.day, s.user_id,
           count(*) FILTER (WHERE n.bits & 1 <> 0),
           count(*) FILTER (WHERE n.bits & 2 <> 0),
           count(*) FILTER (WHERE n.bits & 4 <> 0),
           sum(s.ms)
    FROM settled s
    LEFT JOIN counted n ON n.line_id = s.line_id AND n.day = s.day
        AND n.user_id IS NOT DISTINCT FROM s.user_id
    GROUP BY s.collection_id, s.day, s.user_id
    HAVING count(n.line_id) > 0 OR sum(s.ms) > 0
    ORDER BY s.collection_id, s.day, s.user_id
    ON CONFLICT (collection_id, day, user_id) DO UPDATE
        SET lines = t.lines + EXCLUDED.lines,
            changed = t.changed + EXCLUDED.changed,
            timed_lines = t.timed_lines + EXCLUDED.timed_lines,
            time_spent_ms = t.time_spent_ms + EXCLUDED.time_spent_ms;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def backfill_days(zone: str) -> str:
    """The same counts from the whole trail, once."""
    return f"""
CREATE TEMPORARY TABLE review_settled_days_backfill AS
    SELECT c.line_id, c.user_id, l.collection_id, {day_of(zone)} AS day, {BITS} AS bits,
           sum(c.time_spent_ms) AS ms
    FROM review_correction c JOIN corpus_line l ON l.id = c.line_id
    WHERE c.action IN {SETTLING}
    GROUP BY c.line_id, c.user_id, l.collection_id, day;
INSERT INTO review_reviewerlineday (line_id, user_id, day, counted, newly_counted)
    SELECT line_id, user_id, day, bits, bits FROM review_settled_days_backfill;
INSERT INTO review_reviewerday
    (collection_id, day, user_id, lines, changed, timed_lines, time_spent_ms)
    SELECT collection_id, day, user_id, count(*), count(*) FILTER (WHERE bits & 2 <> 0),
           count(*) FILTER (WHERE bits & 4 <> 0), sum(ms)
    FROM review_settled_days_backfill GROUP BY collection_id, day, user_id;
DROP TABLE review_settled_days_backfill;
"""


def count_days_from_now_on(apps, schema_editor) -> None:
    zone = settings.TIME_ZONE
    schema_editor.execute(LOCK + count_days(zone) + backfill_days(zone))


def count_days_no_more(apps, schema_editor) -> None:
    # The rows go with the tables, which are dropped next.
    schema_editor.execute(LOCK + RESTORE + "DROP FUNCTION IF EXISTS review_day_zone();")


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0023_page_source_name"),
        ("review", "0008_reviewer_totals"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ReviewerDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("lines", models.PositiveIntegerField()),
                ("changed", models.PositiveIntegerField()),
                ("timed_lines", models.PositiveIntegerField()),
                ("time_spent_ms", models.BigIntegerField()),
                (
                    "collection",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="corpus.collection",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("collection", "day", "user"),
                        name="one_reviewer_day",
                        nulls_distinct=False,
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ReviewerLineDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("counted", models.PositiveSmallIntegerField()),
                ("newly_counted", models.PositiveSmallIntegerField()),
                (
                    "line",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="corpus.line",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("line", "user", "day"),
                        name="one_reviewer_line_day",
                        nulls_distinct=False,
                    )
                ],
            },
        ),
        migrations.RunPython(count_days_from_now_on, count_days_no_more),
    ]
