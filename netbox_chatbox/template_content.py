"""What the plugin adds to NetBox's own pages, through NetBox's template extensions.

- On every page (``head``, ``navbar``): the chat panel (static/netbox_chatbox/panel.js) and its header
  button, for users who may chat. The page's object or list is resolved here, as the user, for the chip.
- On every object's detail page (``models = None``: all models, plugin models included): "Ask about this".
"""

from django.conf import settings as django_settings
from django.urls import reverse
from netbox.plugins import PluginTemplateExtension

from .conf import get_settings
from .page_context import readable, resolve_page
from .permissions import can_chat


def _may_chat(context) -> bool:
    request = context.get("request")
    return request is not None and can_chat(request.user)


def _on_chat_page(request) -> bool:
    return request.path == reverse("plugins:netbox_chatbox:chat")


class ChatPanel(PluginTemplateExtension):
    """The panel's script, styles and settings in <head>; its toggle button in the header."""

    def head(self):
        request = self.context.get("request")
        if not _may_chat(self.context) or _on_chat_page(request):
            return ""
        settings = get_settings()
        config = {
            "wsUrl": f"/{django_settings.BASE_PATH}plugins/chatbox/ws/",
            "apiRoot": reverse("plugins-api:netbox_chatbox-api:models").removesuffix("models/"),
            "chatUrl": reverse("plugins:netbox_chatbox:chat"),
            "userId": request.user.pk,
            "maxMessageChars": settings.max_message_chars,
            "page": resolve_page(request.user, request.get_full_path()),
        }
        return self.render("netbox_chatbox/inc/panel_head.html", {"chatbox_panel": config})

    def navbar(self):
        if not _may_chat(self.context) or _on_chat_page(self.context["request"]):
            return ""
        return self.render("netbox_chatbox/inc/panel_button.html")


class AskAboutButton(PluginTemplateExtension):
    """On every object's page: opens the panel with a question about the object (or the Chat page)."""

    models = None

    def buttons(self):
        obj = self.context.get("object")
        if obj is None or not hasattr(obj, "_meta") or not _may_chat(self.context):
            return ""
        if not readable(type(obj)):
            return ""
        label = obj._meta.label_lower
        url = f"{reverse('plugins:netbox_chatbox:chat')}?about={label}:{obj.pk}"
        return self.render("netbox_chatbox/inc/ask_button.html", {"chat_url": url})


template_extensions = [ChatPanel, AskAboutButton]
