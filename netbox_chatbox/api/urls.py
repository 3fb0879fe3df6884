from django.urls import path
from rest_framework.routers import SimpleRouter

from . import chat, conversations, usage, views

app_name = "netbox_chatbox-api"

router = SimpleRouter()
router.register("conversations", conversations.ConversationViewSet, basename="conversation")

urlpatterns = [
    path("models/", views.ModelListView.as_view(), name="models"),
    path("preference/", views.PreferenceView.as_view(), name="preference"),
    path("chat/", chat.ChatView.as_view(), name="chat"),
    path("usage/", usage.UsageView.as_view(), name="usage"),
    *router.urls,
]
