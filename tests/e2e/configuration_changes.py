"""The browser tests' configuration (configuration.py) with changes through the chat enabled and netbox-branching
installed as its docs say (test_changes_ui: a proposal in a branch)."""

from netbox_branching.utilities import DynamicSchemaDict

from tests.e2e.configuration import *  # noqa: F401,F403
from tests.e2e.configuration import DATABASES, PLUGINS, PLUGINS_CONFIG

PLUGINS_CONFIG["netbox_chatbox"]["enable_changes"] = True
PLUGINS = [*PLUGINS, "netbox_branching"]
DATABASES = DynamicSchemaDict(DATABASES)
DATABASE_ROUTERS = ["netbox_branching.database.BranchAwareRouter"]
