from django.urls import path

from ocrreview.corpus import (
    api,
    audit_api,
    audit_views,
    transcript_api,
    transcript_views,
    upload_views,
    views,
)

urlpatterns = [
    path("", views.home, name="home"),
    path("collections/new/", views.new_collection, name="new_collection"),
    path("collections/<int:pk>/", views.collection_detail, name="collection_detail"),
    path("collections/<int:pk>/settings/", views.collection_settings, name="collection_settings"),
    path("collections/<int:pk>/members/", views.collection_members, name="collection_members"),
    path("collections/<int:pk>/members/invite/", views.invite_member, name="invite_member"),
    path(
        "collections/<int:pk>/history/", audit_views.collection_history, name="collection_history"
    ),
    path(
        "collections/<int:pk>/members/<int:user_id>/role/",
        views.set_member_role,
        name="set_member_role",
    ),
    path(
        "collections/<int:pk>/members/<int:user_id>/remove/",
        views.remove_member,
        name="remove_member",
    ),
    path("collections/<int:pk>/upload/", upload_views.upload, name="upload"),
    path("collections/<int:pk>/upload/iiif/", upload_views.import_iiif, name="import_iiif"),
    path("documents/<int:pk>/", views.document_detail, name="document_detail"),
    path("documents/<int:pk>/delete/", views.delete_document, name="delete_document"),
    path("documents/<int:pk>/segment-again/", views.segment_again, name="segment_again"),
    path(
        "documents/<int:pk>/iiif/manifest.json",
        views.document_iiif_manifest,
        name="document_iiif_manifest",
    ),
    path(
        "documents/<int:pk>/transcript/",
        transcript_views.document_transcript,
        name="document_transcript",
    ),
    path(
        "collections/<int:pk>/transcripts/",
        transcript_views.collection_transcripts,
        name="collection_transcripts",
    ),
    path("account/tokens/", views.api_tokens, name="api_tokens"),
    path("account/tokens/<int:pk>/revoke/", views.revoke_api_token, name="revoke_api_token"),
    path("api/collections/", api.CollectionList.as_view(), name="api_collections"),
    path("api/collections/<int:pk>/", api.CollectionDetail.as_view(), name="api_collection"),
    path("api/collections/<int:pk>/members/", api.CollectionMembers.as_view(), name="api_members"),
    path(
        "api/collections/<int:pk>/members/invitations/",
        api.CollectionMemberInvitations.as_view(),
        name="api_member_invitations",
    ),
    path(
        "api/collections/<int:pk>/members/<int:user_id>/",
        api.CollectionMember.as_view(),
        name="api_member",
    ),
    path(
        "api/collections/<int:pk>/events/", audit_api.CollectionEvents.as_view(), name="api_events"
    ),
    path(
        "api/documents/<int:pk>/iiif/manifest.json",
        api.DocumentIiifManifest.as_view(),
        name="api_document_iiif",
    ),
    path(
        "api/documents/<int:pk>/transcript/",
        transcript_api.DocumentTranscript.as_view(),
        name="api_document_transcript",
    ),
    path(
        "api/collections/<int:pk>/transcripts/",
        transcript_api.CollectionTranscripts.as_view(),
        name="api_collection_transcripts",
    ),
]
