from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from assistant import languages, openai_api, views, watching

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("visit", views.record_dashboard_visit, name="record-dashboard-visit"),
    path("health", views.health, name="health"),
    path("ask/", views.ask, name="ask"),
    path("ask/<int:conversation_id>/", views.ask, name="conversation"),
    path("ask/stream", views.ask_stream, name="ask_stream"),
    path("videos/<int:video_id>/watched", watching.mark_watched, name="mark_watched"),
    path("videos/<int:video_id>/not-interested", watching.mark_not_interested, name="mark_not_interested"),
    path("search/", views.search, name="search"),
    path("language", languages.choose_language, name="choose_language"),
    path("v1/models", openai_api.list_models, name="v1_models"),
    path("v1/embeddings", openai_api.embeddings, name="v1_embeddings"),
    path("v1/chat/completions", openai_api.chat_completions, name="v1_chat_completions"),
    path("v1/<path:path>", openai_api.unknown_endpoint),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("sources/", include("ingest.urls")),
]
