"""netbox-chatbox: an AI chat assistant inside NetBox."""

from netbox.plugins import PluginConfig

from .conf import DEFAULT_SETTINGS

__version__ = "0.2.0"


class ChatboxConfig(PluginConfig):
    name = "netbox_chatbox"
    verbose_name = "Chatbox"
    description = "Chat with an AI assistant about your NetBox data, within your permissions"
    version = __version__
    author = "netbox-chatbox developers"
    base_url = "chatbox"
    min_version = "4.7.0"
    default_settings = DEFAULT_SETTINGS

    def ready(self):
        super().ready()
        from utilities.permissions import ModelAction, register_model_actions

        from . import checks  # noqa: F401  (registers the system checks)
        from .models import Conversation
        from .proposals import jobs  # noqa: F401  (registers the proposals' housekeeping system job)

        # Shown as a checkbox on NetBox's ObjectPermission form for "Chatbox | conversation".
        register_model_actions(
            Conversation,
            [
                ModelAction("chat", help_text="Chat with the AI assistant"),
                ModelAction("mcp", help_text="Use the assistant's NetBox tools from your own AI client (MCP)"),
                ModelAction("view_usage", help_text="See chat usage and cost of all users (figures, no content)"),
            ],
        )


config = ChatboxConfig
