"""pytest-django settings: NetBox's own settings, with devconf/configuration.py as configuration."""

import os

os.environ.setdefault("NETBOX_CONFIGURATION", "configuration")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# scripts/test.sh runs pytest-xdist workers (gw0, gw1, …). Each has its own PostgreSQL database
# (pytest-django adds the worker to the name) and, set here, its own two Redis databases, for its
# cache and rate limits and for the servers it starts (they inherit this environment).
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    first = int(os.environ.get("NETBOX_REDIS_DB", "0"))
    os.environ["NETBOX_REDIS_DB"] = str(first + 2 * (int(worker.removeprefix("gw")) + 1))

import importlib  # noqa: E402

# A third-party plugin with models and detail pages of its own, in the tests only (not the demo): the assistant
# must read any plugin's objects without a list of types (tests/test_plugin_models.py, tests/e2e/test_panel.py).
# Its IPAM sync is off: it would add its own queries to every IP address saved by other tests.
configuration = importlib.import_module(os.environ["NETBOX_CONFIGURATION"])  # what netbox.settings reads
configuration.PLUGINS = [*configuration.PLUGINS, "netbox_dns", "netbox_branching"]
configuration.PLUGINS_CONFIG["netbox_dns"] = {"dnssync_disabled": True}

# netbox-branching, installed as its docs say: every test runs with it (main, no branch active, unless a test
# provisions one: tests/test_branching.py). One provisioning worker: the suite's machine has two cores.
from netbox_branching.utilities import DynamicSchemaDict  # noqa: E402

configuration.DATABASES = DynamicSchemaDict(configuration.DATABASES)
configuration.DATABASE_ROUTERS = ["netbox_branching.database.BranchAwareRouter"]
configuration.PLUGINS_CONFIG["netbox_branching"] = {"provision_workers": 1}

from netbox.settings import *  # noqa: E402,F401,F403
from netbox.settings import INSTALLED_APPS  # noqa: E402

# First, so that its faster ``flush`` is the one transactional tests run.
INSTALLED_APPS = ["tests.fastflush", *INSTALLED_APPS]

# Users made in tests need no slow hash (Django's advice for test suites); PBKDF2 stays available for
# the browser tests' users, whose passwords a NetBox server process with its default hashers checks.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
