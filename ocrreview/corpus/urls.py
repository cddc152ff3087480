from django.urls import path

from ocrreview.corpus import api, upload_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("collections/<int:pk>/", views.collection_detail, name="collection_detail"),
    path("collections/<int:pk>/settings/", views.collection_settings, name="collection_settings"),
    path("collections/<int:pk>/upload/", upload_views.upload, name="upload"),
    path(
        "api/collections/<int:pk>/documents/",
        api.collection_documents,
        name="api_collection_documents",
    ),
    path("api/collections/<int:pk>/recognize/", api.collection_recognize, name="api_recognize"),
    path("api/documents/<int:pk>/", api.document_detail, name="api_document"),
]
