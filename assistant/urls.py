from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from assistant import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("health", views.health, name="health"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("sources/", include("ingest.urls")),
]
