from django.urls import path

from ocrreview.corpus import views

urlpatterns = [
    path("", views.home, name="home"),
    path("collections/<int:pk>/", views.collection_detail, name="collection_detail"),
    path("collections/<int:pk>/settings/", views.collection_settings, name="collection_settings"),
]
