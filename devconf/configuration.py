"""NetBox configuration for development, the demo and the test suite.

Everything comes from the environment so one file serves all three:
NETBOX_DB (database name), CHATBOX_PLUGINS=0 (load NetBox without the plugin, used to
build the schema snapshot), and the chatbox's own keys below.
"""

import os

ALLOWED_HOSTS = os.environ.get("NETBOX_ALLOWED_HOSTS", "127.0.0.1 localhost testserver").split()
SECRET_KEY = os.environ.get("NETBOX_SECRET_KEY", "dev-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG")
API_TOKEN_PEPPERS = {
    1: os.environ.get("NETBOX_TOKEN_PEPPER", "dev-only-pepper-0123456789-abcdefghijklmnopqrstuvwxyz-XY")
}

DATABASES = {
    "default": {
        "NAME": os.environ.get("NETBOX_DB", "netbox_chatbox"),
        "USER": os.environ.get("NETBOX_DB_USER", "postgres"),
        "PASSWORD": os.environ.get("NETBOX_DB_PASSWORD", ""),
        "HOST": os.environ.get("NETBOX_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("NETBOX_DB_PORT", "5432"),
        "CONN_MAX_AGE": 0,
        # pytest-django reuses this name for its test database (test_<NAME>).
        "TEST": {"NAME": os.environ.get("NETBOX_TEST_DB", "test_netbox_chatbox")},
    }
}
_redis_db = int(os.environ.get("NETBOX_REDIS_DB", "0"))
_redis_port = int(os.environ.get("NETBOX_REDIS_PORT", "6379"))  # another Redis server, e.g. for a parallel suite
REDIS = {
    "tasks": {"HOST": "127.0.0.1", "PORT": _redis_port, "DATABASE": _redis_db, "SSL": False},
    "caching": {"HOST": "127.0.0.1", "PORT": _redis_port, "DATABASE": _redis_db + 1, "SSL": False},
}

DEBUG = os.environ.get("NETBOX_DEBUG", "0") == "1"
DEVELOPER = os.environ.get("NETBOX_DEVELOPER", "0") == "1"
METRICS_ENABLED = os.environ.get("NETBOX_METRICS", "0") == "1"  # /metrics (django-prometheus)

PLUGINS = [] if os.environ.get("CHATBOX_PLUGINS") == "0" else ["netbox_chatbox"]
PLUGINS_CONFIG = {
    "netbox_chatbox": {
        # The demo and tests point these at local fake providers; see README.
        "anthropic_api_key": os.environ.get("ANTHROPIC_API_KEY", ""),
        "anthropic_base_url": os.environ.get("ANTHROPIC_BASE_URL", ""),
        "litellm_enabled": os.environ.get("LITELLM_ENABLED", "0") == "1",
        "litellm_proxy_url": os.environ.get("LITELLM_PROXY_URL", ""),
        "litellm_master_key": os.environ.get("LITELLM_MASTER_KEY", ""),
        "ollama_base_url": os.environ.get("OLLAMA_BASE_URL", "http://127.0.0.1:11434"),
    }
}
