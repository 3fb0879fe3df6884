"""pytest-django settings: NetBox's own settings, with devconf/configuration.py as configuration."""
import os

os.environ.setdefault("NETBOX_CONFIGURATION", "configuration")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from netbox.settings import *  # noqa: E402,F401,F403
from netbox.settings import INSTALLED_APPS  # noqa: E402

# First, so that its faster ``flush`` is the one transactional tests run.
INSTALLED_APPS = ["tests.fastflush", *INSTALLED_APPS]

# Users made in tests need no slow hash (Django's advice for test suites); PBKDF2 stays available for
# the browser tests' users, whose passwords a NetBox server process with its default hashers checks.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                    "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
