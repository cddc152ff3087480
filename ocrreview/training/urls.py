from django.urls import path

from ocrreview.training import api, views

C = "collections/<int:pk>/training/"

urlpatterns = [
    path(C, views.training_home, name="training_home"),
    path(C + "exports/", views.start_export, name="training_start_export"),
    path(C + "runs/", views.start_training, name="training_start_run"),
    path(C + "import/", views.import_dataset, name="training_import"),
    path(C + "split/redraw/", views.redraw_split, name="training_redraw_split"),
    path("training/exports/<int:pk>/", views.export_detail, name="training_export"),
    path(
        "training/exports/<int:pk>/download/",
        views.export_download,
        name="training_export_download",
    ),
    path("training/runs/<int:pk>/", views.run_detail, name="training_run"),
    path("training/runs/<int:pk>/cancel/", views.cancel_run, name="training_cancel"),
    path("training/runs/<int:pk>/promote/", views.override_promotion, name="training_override"),
    path(
        "training/runs/<int:pk>/rerecognize/",
        views.rerecognize,
        name="training_rerecognize",
    ),
    path("api/" + C + "exports/", api.CollectionExports.as_view(), name="api_exports"),
    path(
        "api/" + C + "split/", api.CollectionEvaluationSplit.as_view(), name="api_evaluation_split"
    ),
    path(
        "api/" + C + "split/redraw/",
        api.EvaluationSplitRedraw.as_view(),
        name="api_evaluation_split_redraw",
    ),
    path("api/training/exports/<int:pk>/", api.ExportDetail.as_view(), name="api_export"),
    path(
        "api/training/exports/<int:pk>/download/",
        api.ExportDownload.as_view(),
        name="api_export_download",
    ),
    path("api/" + C + "runs/", api.CollectionTrainingRuns.as_view(), name="api_training_runs"),
    path("api/training/runs/<int:pk>/", api.TrainingRunDetail.as_view(), name="api_training_run"),
    path(
        "api/training/runs/<int:pk>/cancel/",
        api.TrainingRunCancel.as_view(),
        name="api_training_cancel",
    ),
    path("api/" + C + "models/", api.CollectionModelVersions.as_view(), name="api_model_versions"),
    path(
        "api/training/models/<int:pk>/", api.ModelVersionDetail.as_view(), name="api_model_version"
    ),
    path(
        "api/training/models/<int:pk>/promote/",
        api.ModelVersionPromote.as_view(),
        name="api_model_promote",
    ),
]
