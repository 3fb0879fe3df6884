from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from . import catalog
from .conf import get_settings
from .permissions import can_chat
from .preferences import get_user_model

# Object types the "Ask about this object" button appears on (template_content.py) and ?about= accepts.
ABOUT_MODELS = ("dcim.device", "dcim.site", "ipam.prefix", "ipam.ipaddress", "ipam.vlan", "circuits.circuit")


def resolve_about(user, value):
    """``?about=dcim.device:12`` → a dict describing that object, or None when the user may not view it.

    A hidden object and a missing one look the same, so the page never confirms that an object exists.
    """
    label, _, pk = (value or "").partition(":")
    if label not in ABOUT_MODELS or label in get_settings().excluded_models or not pk.isdigit():
        return None
    model = apps.get_model(label)
    obj = model.objects.restrict(user, "view").filter(pk=int(pk)).first()
    if obj is None:
        return None
    verbose_name = model._meta.verbose_name
    return {
        "ref": f"{label}:{obj.pk}",
        "type": verbose_name,
        "display": str(obj),
        "url": obj.get_absolute_url(),
        "question": f'Tell me about the {verbose_name} "{obj}" ({label} id {obj.pk}).',
    }


def provider_configured(settings) -> bool:
    """Whether any model can answer at all: an Anthropic key (path A) or LiteLLM switched on (path B)."""
    return bool(settings.anthropic_api_key) or settings.litellm_enabled


def _conversation_param(request):
    value = request.GET.get("conversation", "")
    return int(value) if value.isdigit() else None


class ChatView(LoginRequiredMixin, View):
    """The chat page: the template renders the layout, static/netbox_chatbox/chat.js does the rest."""

    def get(self, request):
        if not can_chat(request.user):
            raise PermissionDenied("You do not have permission to use the chat assistant.")
        settings = get_settings()
        model = catalog.get_model(get_user_model(request.user))
        about_param = request.GET.get("about")
        about = resolve_about(request.user, about_param) if about_param else None
        api_root = reverse("plugins-api:netbox_chatbox-api:models").removesuffix("models/")
        config = {
            "wsUrl": f"/{django_settings.BASE_PATH}plugins/chatbox/ws/",
            "apiRoot": api_root,
            "userId": request.user.pk,
            "activeModel": {"id": model.id, "name": model.name, "provider": model.provider, "path": model.path},
            "selectionEnabled": settings.enable_model_selection,
            "maxMessageChars": settings.max_message_chars,
            "conversation": _conversation_param(request),
            "about": about,
        }
        return render(request, "netbox_chatbox/chat.html", {
            "active_model": model,
            "selection_enabled": settings.enable_model_selection,
            "max_message_chars": settings.max_message_chars,
            "about": about,
            "about_missing": bool(about_param) and about is None,
            # Without one the page says what to configure, and its input stays disabled.
            "provider_configured": provider_configured(settings),
            "chatbox_config": config,
        })
