"""The reviewer statistics' running totals (models.ReviewerLine, models.ReviewerTotals), kept
by a trigger on the correction trail in the transaction of each insert, and filled from the
trail as it stands.

The trigger is one per statement, over the statement's new rows (a transition table), so that a
bulk insert costs two upserts, not two per row. A line counts for a reviewer the first time
they settle it (ReviewerLine's insert), as changed the first time a save of theirs changed its
text, as timed the first time the editor timed one: each is a bit that the upsert adds to
`counted` and reports in `newly_counted`, set from the row as it was when the upsert locked it,
so two transactions adding the same bit count it once. Rows are upserted in key order, so that
two transactions locking several take turns rather than deadlock; reviewers saving different
lines touch different rows and do not wait for each other.

A line's collection is read at the insert: a line never moves to another collection (nor does
its document; the Django admin refuses it), and a line with a settling record is never deleted
(PROTECT, and migration 0007's trigger), so totals only grow as the trail does.

The backfill runs after CREATE TRIGGER, whose lock keeps the trail from new inserts until this
migration commits: none is missed, none counted twice. Saves wait meanwhile: 56 s for 2.2 M
corrections on a loaded 2-core machine (bench.reviewer_stats).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

SETTLING = "('accept', 'edit', 'pick', 'revert')"  # as review.progress.SETTLING
# The bits of ReviewerLine.counted a group of a reviewer's settling records of one line sets.
BITS = """1 | CASE WHEN bool_or(c.text_before <> c.text_after) THEN 2 ELSE 0 END
      | CASE WHEN bool_or(c.time_spent_ms > 0) THEN 4 ELSE 0 END"""

CREATE = f"""
CREATE FUNCTION review_count_settled() RETURNS trigger AS $$
BEGIN
    WITH settled AS (
        SELECT c.line_id, c.user_id, l.collection_id, {BITS} AS bits,
               sum(c.time_spent_ms) AS ms
        FROM added c JOIN corpus_line l ON l.id = c.line_id
        WHERE c.action IN {SETTLING}
        GROUP BY c.line_id, c.user_id, l.collection_id
    ), counted AS (
        INSERT INTO review_reviewerline AS r (line_id, user_id, counted, newly_counted)
        SELECT line_id, user_id, bits, bits FROM settled ORDER BY line_id, user_id
        ON CONFLICT (line_id, user_id) DO UPDATE
            SET counted = r.counted | EXCLUDED.counted,
                newly_counted = EXCLUDED.counted & ~r.counted
            WHERE EXCLUDED.counted & ~r.counted <> 0
        RETURNING r.line_id, r.user_id, r.newly_counted AS bits
    )
    INSERT INTO review_reviewertotals AS t
        (collection_id, user_id, lines, changed, timed_lines, time_spent_ms)
    SELECT s.collection_id, s.user_id,
           count(*) FILTER (WHERE n.bits & 1 <> 0),
           count(*) FILTER (WHERE n.bits & 2 <> 0),
           count(*) FILTER (WHERE n.bits & 4 <> 0),
           sum(s.ms)
    FROM settled s
    LEFT JOIN counted n ON n.line_id = s.line_id AND n.user_id IS NOT DISTINCT FROM s.user_id
    GROUP BY s.collection_id, s.user_id
    -- A save of a line already counted, untimed, adds nothing: no row to lock.
    HAVING count(n.line_id) > 0 OR sum(s.ms) > 0
    ORDER BY s.collection_id, s.user_id
    ON CONFLICT (collection_id, user_id) DO UPDATE
        SET lines = t.lines + EXCLUDED.lines,
            changed = t.changed + EXCLUDED.changed,
            timed_lines = t.timed_lines + EXCLUDED.timed_lines,
            time_spent_ms = t.time_spent_ms + EXCLUDED.time_spent_ms;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER review_count_settled
    AFTER INSERT ON review_correction
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION review_count_settled();
"""
# The same counts from the whole trail, once.
BACKFILL = f"""
CREATE TEMPORARY TABLE review_settled_backfill AS
    SELECT c.line_id, c.user_id, l.collection_id, {BITS} AS bits,
           sum(c.time_spent_ms) AS ms
    FROM review_correction c JOIN corpus_line l ON l.id = c.line_id
    WHERE c.action IN {SETTLING}
    GROUP BY c.line_id, c.user_id, l.collection_id;
INSERT INTO review_reviewerline (line_id, user_id, counted, newly_counted)
    SELECT line_id, user_id, bits, bits FROM review_settled_backfill;
INSERT INTO review_reviewertotals
    (collection_id, user_id, lines, changed, timed_lines, time_spent_ms)
    SELECT collection_id, user_id, count(*), count(*) FILTER (WHERE bits & 2 <> 0),
           count(*) FILTER (WHERE bits & 4 <> 0), sum(ms)
    FROM review_settled_backfill GROUP BY collection_id, user_id;
DROP TABLE review_settled_backfill;
"""
DROP = """
DROP TRIGGER IF EXISTS review_count_settled ON review_correction;
DROP FUNCTION IF EXISTS review_count_settled();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0022_collectionevent_collection_created"),
        ("review", "0007_unclear_marks_removed_with_their_line"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ReviewerLine",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("counted", models.PositiveSmallIntegerField()),
                ("newly_counted", models.PositiveSmallIntegerField()),
                (
                    "line",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        db_constraint=False,
                        db_index=False,
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
                        fields=("line", "user"), name="one_reviewer_line", nulls_distinct=False
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ReviewerTotals",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
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
                        fields=("collection", "user"),
                        name="one_reviewer_totals",
                        nulls_distinct=False,
                    )
                ],
            },
        ),
        # The rows go with the tables when this is reversed.
        migrations.RunSQL(CREATE + BACKFILL, DROP),
    ]
