from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views import View

from . import catalog
from .conf import get_settings
from .permissions import can_chat
from .preferences import get_user_model


class ChatView(LoginRequiredMixin, View):
    """The chat page."""

    def get(self, request):
        if not can_chat(request.user):
            raise PermissionDenied("You do not have permission to use the chat assistant.")
        model = catalog.get_model(get_user_model(request.user))
        return render(request, "netbox_chatbox/chat.html", {
            "active_model": model,
            "selection_enabled": get_settings().enable_model_selection,
        })
