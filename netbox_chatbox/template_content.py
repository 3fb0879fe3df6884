"""The "Ask about this" button on the detail pages of the objects people ask about most."""
from django.urls import reverse
from netbox.plugins import PluginTemplateExtension

from .conf import get_settings
from .permissions import can_chat
from .views import ABOUT_MODELS


class AskAboutButton(PluginTemplateExtension):
    models = list(ABOUT_MODELS)

    def buttons(self):
        obj = self.context["object"]
        if not can_chat(self.context["request"].user) or obj._meta.label_lower in get_settings().excluded_models:
            return ""
        url = f"{reverse('plugins:netbox_chatbox:chat')}?about={obj._meta.label_lower}:{obj.pk}"
        return self.render("netbox_chatbox/inc/ask_button.html", {"chat_url": url})


template_extensions = [AskAboutButton]
