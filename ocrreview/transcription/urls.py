from django.urls import path

from ocrreview.transcription import views

urlpatterns = [
    path("collections/<int:pk>/progress/", views.progress, name="recognition_progress"),
    path("collections/<int:pk>/recognize/", views.rerecognize, name="rerecognize"),
    path("ops/queues/", views.queues, name="recognition_queues"),
]
