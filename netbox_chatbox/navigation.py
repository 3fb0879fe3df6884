from netbox.plugins import PluginMenu, PluginMenuItem

from .permissions import CHAT_PERMISSION

menu = PluginMenu(
    label="Chat",
    icon_class="mdi mdi-chat-processing-outline",
    groups=(
        ("Assistant", (
            PluginMenuItem(link="plugins:netbox_chatbox:chat", link_text="Chat", permissions=[CHAT_PERMISSION]),
        )),
    ),
)
