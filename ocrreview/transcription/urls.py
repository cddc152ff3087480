from django.urls import path

from ocrreview.transcription import api, views

urlpatterns = [
    path("collections/<int:pk>/progress/", views.progress, name="recognition_progress"),
    path("collections/<int:pk>/recognize/", views.rerecognize, name="rerecognize"),
    path("ops/queues/", views.queues, name="recognition_queues"),
    path(
        "api/collections/<int:pk>/documents/",
        api.CollectionDocuments.as_view(),
        name="api_collection_documents",
    ),
    path(
        "api/collections/<int:pk>/recognize/",
        api.CollectionRecognize.as_view(),
        name="api_recognize",
    ),
    path("api/documents/<int:pk>/", api.DocumentDetail.as_view(), name="api_document"),
    path(
        "api/documents/<int:pk>/review-state/",
        api.DocumentReviewState.as_view(),
        name="api_document_review_state",
    ),
    path(
        "api/documents/<int:pk>/assignees/",
        api.DocumentAssignees.as_view(),
        name="api_document_assignees",
    ),
    path("api/collections/<int:pk>/iiif/", api.CollectionIiifImport.as_view(), name="api_iiif"),
]
