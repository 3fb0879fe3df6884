from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from . import catalog
from .conf import get_settings
from .examples import example_questions
from .page_context import describe_object, readable
from .permissions import can_chat
from .preferences import get_user_model


def resolve_about(user, value):
    """``?about=dcim.device:12`` (any model) → the object as the chat describes it, or None when the user may
    not view it. A hidden object and a missing one look the same: the page never confirms that one exists.
    """
    label, _, pk = (value or "").partition(":")
    if not pk.isdigit():
        return None
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None
    if not readable(model) or not hasattr(model, "get_absolute_url"):
        return None
    obj = model.objects.restrict(user, "view").filter(pk=int(pk)).first()
    if obj is None:
        return None
    about = describe_object(obj)
    return {**about, "question": f'Tell me about the {about["type_name"]} "{about["display"]}".'}


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
        return render(
            request,
            "netbox_chatbox/chat.html",
            {
                "active_model": model,
                "selection_enabled": settings.enable_model_selection,
                "max_message_chars": settings.max_message_chars,
                "about": about,
                "about_missing": bool(about_param) and about is None,
                # Without one the page says what to configure, and its input stays disabled.
                "provider_configured": provider_configured(settings),
                "examples": example_questions(request.user),
                "chatbox_config": config,
            },
        )
