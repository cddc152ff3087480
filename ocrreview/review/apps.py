from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "ocrreview.review"
    verbose_name = "Review"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_migrate

        from ocrreview.corpus.models import Page
        from ocrreview.corpus.signals import (
            being_corrected,
            member_removed,
            text_imported,
            texts_held_before,
            unclear_imported,
            unsaved_work_of_member,
        )
        from ocrreview.review.actions import (
            count_drafts_of_member,
            drop_drafts_of_former_member,
            drop_imported_marks,
            record_imported_marks,
            record_imported_text,
            texts_corrections_wrote,
        )
        from ocrreview.review.images import forget_page
        from ocrreview.review.queue import lines_with_drafts
        from ocrreview.review.reviewer_days import count_days_in_the_sites_zone
        from ocrreview.transcription.signals import marked_text_replaced

        text_imported.connect(record_imported_text, dispatch_uid="record_imported_text")
        unclear_imported.connect(record_imported_marks, dispatch_uid="record_imported_marks")
        marked_text_replaced.connect(drop_imported_marks, dispatch_uid="drop_imported_marks")
        being_corrected.connect(lines_with_drafts, dispatch_uid="lines_with_drafts")
        texts_held_before.connect(texts_corrections_wrote, dispatch_uid="texts_corrections_wrote")
        member_removed.connect(drop_drafts_of_former_member, dispatch_uid="drop_drafts")
        unsaved_work_of_member.connect(count_drafts_of_member, dispatch_uid="count_drafts")
        post_delete.connect(forget_page, sender=Page, dispatch_uid="forget_page")
        post_migrate.connect(
            count_days_in_the_sites_zone, sender=self, dispatch_uid="count_days_in_the_sites_zone"
        )
