"""pytest-django settings: NetBox's own settings, with devconf/configuration.py as configuration."""
import os

os.environ.setdefault("NETBOX_CONFIGURATION", "configuration")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from netbox.settings import *  # noqa: E402,F401,F403
