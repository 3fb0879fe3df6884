from django.urls import path

from . import usage_views, views

urlpatterns = [
    path("", views.ChatView.as_view(), name="chat"),
    path("usage/", usage_views.UsageView.as_view(), name="usage"),
]
