"""The browser tests' configuration (configuration.py) with changes through the chat enabled (test_changes_ui)."""

from tests.e2e.configuration import *  # noqa: F401,F403
from tests.e2e.configuration import PLUGINS_CONFIG

PLUGINS_CONFIG["netbox_chatbox"]["enable_changes"] = True
