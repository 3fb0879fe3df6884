"""NetBox configuration of the browser tests' server: the dev configuration (devconf/) plus a few settings.

- health_cache_ttl 0: a provider a test takes offline is noticed at once (not after 30 s).
- rate_limit_per_minute 0: one test user sends more messages per minute than a person would.
- budgets: a daily limit for members of the group e2e-limited only.
- fallback_order: Claude first, then the local model (when Claude itself is down).
- netbox_dns: a third-party plugin's models and pages, as in tests/settings.py.
"""

from configuration import *  # noqa: F401,F403  (devconf/configuration.py)
from configuration import PLUGINS, PLUGINS_CONFIG

PLUGINS = [*PLUGINS, "netbox_dns"]
PLUGINS_CONFIG["netbox_dns"] = {"dnssync_disabled": True}

PLUGINS_CONFIG["netbox_chatbox"].update(
    health_cache_ttl=0, rate_limit_per_minute=0, fallback_order=["auto", "ollama-qwen2.5"]
)
PLUGINS_CONFIG["netbox_chatbox"]["budgets"] = {
    "groups": {"e2e-limited": {"day_tokens": 1000}},
    "exempt_local_models": False,
}
