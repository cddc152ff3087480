from django.urls import path

from ocrreview.review import api, replace_api, views

C = "collections/<int:pk>/review/"
L = C + "lines/<int:line_id>/"
P = C + "pages/<int:page_id>/"

urlpatterns = [
    path("api/collections/<int:pk>/lines/", api.CollectionLines.as_view(), name="api_lines"),
    path("api/collections/<int:pk>/search/", api.CollectionSearch.as_view(), name="api_search"),
    path(
        "api/collections/<int:pk>/replace/",
        replace_api.CollectionReplace.as_view(),
        name="api_replace",
    ),
    path("api/collections/<int:pk>/queue/claim/", api.QueueClaim.as_view(), name="api_claim"),
    path(
        "api/collections/<int:pk>/corrections/",
        api.CollectionCorrections.as_view(),
        name="api_corrections",
    ),
    path(
        "api/collections/<int:pk>/corrections/revert/",
        api.RevertUserSaves.as_view(),
        name="api_corrections_revert",
    ),
    path(
        "api/collections/<int:pk>/corrections/revert/<int:undo_id>/",
        api.SavesUndoDetail.as_view(),
        name="api_corrections_revert_job",
    ),
    path(
        "api/collections/<int:pk>/reviewers/days/",
        api.CollectionReviewerDays.as_view(),
        name="api_reviewer_days",
    ),
    path("api/pages/<int:pk>/", api.PageDetail.as_view(), name="api_page"),
    path("api/pages/<int:pk>/image/", api.PageImage.as_view(), name="api_page_image"),
    path("api/pages/<int:pk>/sort/", api.PageSort.as_view(), name="api_page_sort"),
    path("api/pages/<int:pk>/sort/undo/", api.PageSortUndo.as_view(), name="api_page_sort_undo"),
    path("api/lines/<int:pk>/", api.LineDetail.as_view(), name="api_line"),
    path("api/lines/<int:pk>/lease/", api.LineLease.as_view(), name="api_line_lease"),
    path("api/lines/<int:pk>/unclear/", api.LineUnclear.as_view(), name="api_line_unclear"),
    path("api/lines/<int:pk>/reorder/", api.LineReorder.as_view(), name="api_line_reorder"),
    path(
        "api/lines/<int:pk>/corrections/",
        api.LineCorrections.as_view(),
        name="api_line_corrections",
    ),
    path(C, views.review_queue, name="review_queue"),
    path(C + "skipped/", views.review_skipped_again, name="review_skipped_again"),
    path(L, views.line_editor, name="review_line"),
    path(L + "save/", views.save_line, name="review_save"),
    path(L + "skip/", views.skip_line, name="review_skip"),
    path(L + "draft/", views.save_draft, name="review_draft"),
    path(L + "draft/discard/", views.discard_draft, name="review_discard"),
    path(L + "lease/", views.renew_lease, name="review_lease"),
    path(L + "unclear/", views.mark_unclear, name="review_unclear"),
    path(L + "history/", views.line_history, name="review_history"),
    path(L + "revert/<int:correction_id>/", views.revert_line, name="review_revert"),
    path(L + "image/", views.line_image, name="review_line_image"),
    path(L + "move/", views.move_line, name="review_move"),
    path(L + "split/", views.split_line, name="review_split"),
    path(L + "merge/", views.merge_line, name="review_merge"),
    path(L + "delete/", views.delete_line, name="review_delete"),
    path(L + "reorder/", views.reorder_line, name="review_reorder"),
    path(P, views.page_view, name="review_page"),
    path(P + "image/", views.page_image, name="review_page_image"),
    path(P + "lease/", views.renew_page_leases, name="review_page_lease"),
    path(P + "release/", views.release_page, name="review_page_release"),
    path(P + "lines/add/", views.add_line, name="review_add_line"),
    path(P + "sort/", views.sort_page, name="review_sort_page"),
    path(P + "sort/undo/", views.undo_page_sort, name="review_undo_sort"),
    path(C + "threshold-preview/", views.threshold_preview, name="review_threshold_preview"),
    path(C + "threshold/apply/", views.apply_threshold, name="review_apply_threshold"),
    path(C + "progress/", views.progress_view, name="review_progress"),
    path(C + "progress/days.csv", views.reviewer_days_csv, name="review_reviewer_days_csv"),
    path(
        C + "documents/<int:document_id>/state/",
        views.set_document_state,
        name="review_document_state",
    ),
    path(
        C + "documents/<int:document_id>/assignees/",
        views.set_document_assignees,
        name="review_document_assignees",
    ),
    path(C + "corrections/", views.corrections_view, name="review_corrections"),
    path(C + "corrections/revert/", views.revert_user_saves, name="review_revert_user"),
    path(
        C + "corrections/revert/<int:undo_id>/",
        views.saves_undo_progress,
        name="review_saves_undo",
    ),
    path("collections/<int:pk>/search/", views.search_view, name="collection_search"),
    path("collections/<int:pk>/search/replace/", views.replace_view, name="collection_replace"),
]
