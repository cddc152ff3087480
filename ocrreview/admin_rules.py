"""What staff may do in the Django admin to rows the app also changes."""

from django import forms
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property


class ReadOnly:
    """Shown, not edited: the app changes these through its actions, which keep versions,
    history and the queue in step (a line's text saved here would leave no correction, and
    could put back a text a reviewer saved since the page was opened)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class EstimatedCountPaginator(Paginator):
    """Pages of a table too large to count on every page: unfiltered, its size is the
    database's estimate (from its last ANALYZE); filtered, or small, it is counted."""

    counted_below = 100_000

    @cached_property
    def count(self) -> int:
        if self.object_list.query.where:
            return super().count
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [self.object_list.model._meta.db_table],
            )
            estimate = cursor.fetchone()[0]
        return estimate if estimate >= self.counted_below else super().count


class LargeTable:
    """A list of millions of rows: newest first by the primary key, without counting them
    all on every page, and with the rows its list shows joined in."""

    ordering = ["-id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


class ChangedFieldsAdmin(admin.ModelAdmin):
    """The admin writes every field of its form back. A row the app changes while staff look
    at it (a collection's model promoted by a training run, a document read by a worker, a
    run's progress) would be put back as the page showed it, so only the fields the staff
    member changed are written."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # The page sends back the values it showed, so changed_data names what the staff
        # member changed, not what changed since the page was opened.
        for field in form.base_fields.values():
            # A file's is the upload itself, and a name sent back would always differ from it.
            field.show_hidden_initial = not isinstance(field, forms.FileField)
        return form

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            super().save_model(request, obj, form, change)
        elif form.changed_data:
            self.save_changed(request, obj, form)

    def save_changed(self, request, obj, form) -> None:
        obj.save(update_fields=form.changed_data)
