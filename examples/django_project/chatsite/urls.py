from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home),
    path("v1/chat/completions", views.chat_completions),
    path("v1/whoami", views.whoami),
]
