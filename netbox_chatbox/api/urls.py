from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .. import mcp_endpoint
from . import chat, conversations, proposals, usage, views

app_name = "netbox_chatbox-api"

router = SimpleRouter()
router.register("conversations", conversations.ConversationViewSet, basename="conversation")
router.register("proposals", proposals.ProposalViewSet, basename="proposal")

urlpatterns = [
    path("models/", views.ModelListView.as_view(), name="models"),
    path("preference/", views.PreferenceView.as_view(), name="preference"),
    path("chat/", chat.ChatView.as_view(), name="chat"),
    # MCP (Streamable HTTP) for a WSGI-only NetBox; the plugin's ASGI application answers it before Django.
    re_path(r"^mcp/?$", mcp_endpoint.mcp_view, name="mcp"),
    path("usage/", usage.UsageView.as_view(), name="usage"),
    path("status/", views.StatusView.as_view(), name="status"),
    *router.urls,
]
