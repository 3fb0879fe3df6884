from netbox.plugins import PluginMenu, PluginMenuItem

from .permissions import CHAT_PERMISSION, USAGE_PERMISSION

menu = PluginMenu(
    label="Chat",
    icon_class="mdi mdi-chat-processing-outline",
    groups=(
        (
            "Assistant",
            (
                PluginMenuItem(link="plugins:netbox_chatbox:chat", link_text="Chat", permissions=[CHAT_PERMISSION]),
                PluginMenuItem(link="plugins:netbox_chatbox:usage", link_text="Usage", permissions=[USAGE_PERMISSION]),
            ),
        ),
    ),
)
