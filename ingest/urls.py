from django.urls import path

from ingest import views

urlpatterns = [
    path("", views.sources, name="sources"),
    path("progress", views.source_progress, name="source-progress"),
    path("subscribe", views.subscribe, name="subscribe"),
    path("<int:source_id>/unsubscribe", views.unsubscribe, name="unsubscribe"),
    path("<int:source_id>/sync", views.sync_now, name="sync-source"),
]
