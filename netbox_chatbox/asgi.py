"""The ASGI application: all of NetBox plus the chat WebSocket, in one server.

NetBox 4.7 ships only a WSGI module. Run this one instead (or next to gunicorn, with the proxy sending
``/plugins/chatbox/ws/`` and the streamed chat API here); see docs/deployment.md::

    uvicorn netbox_chatbox.asgi:application --host 0.0.0.0 --port 8000

It serves NetBox's static files too, so one ASGI server needs nothing in front of it: with DEBUG off,
what ``netbox collectstatic`` put in STATIC_ROOT, through ServeStatic (WhiteNoise's ASGI-native
fork); with DEBUG on, straight from the apps' folders, as NetBox's runserver does.

Django must be set up (``get_asgi_application()``) before anything imports models, so the
imports below it are deliberately late.
"""

import logging
import os
import re

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netbox.settings")
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path, re_path  # noqa: E402
from servestatic import ServeStaticASGI  # noqa: E402

from . import mcp_endpoint  # noqa: E402
from .agents import warmup  # noqa: E402
from .consumers import ChatConsumer, SameOriginValidator  # noqa: E402

logger = logging.getLogger("netbox_chatbox.asgi")

WEBSOCKET_PATH = f"{settings.BASE_PATH}plugins/chatbox/ws/"

# File names that carry a hash of their content, so browsers may keep them for good: Django's
# ManifestStaticFilesStorage (name.<12 hex>.ext), NetBox's esbuild bundles (Inter-Bold-RTIBL5DO.woff)
# and its documentation's assets (main.3d7537f3.min.css). Everything else (NetBox's own files carry
# ``?v=<release>``, the plugin's none) is cached for ServeStatic's default 60 seconds.
HASHED_FILE = r"[.-](?:[0-9a-f]{12}|[0-9a-f]{8}|[0-9A-Z]{8})\.[^/]+$"


def with_static_files(application):
    """``application`` with STATIC_URL served in front of it (see the module's docstring)."""
    if settings.DEBUG:
        return ASGIStaticFilesHandler(application)
    if not os.path.isfile(os.path.join(settings.STATIC_ROOT, "setmode.js")):
        logger.warning(
            "%s holds no NetBox static files: every page will show NetBox's static media failure; "
            "run `netbox collectstatic --no-input`",
            settings.STATIC_ROOT,
        )
    # index_file: /static/docs/ (NetBox's Docs link) is the documentation's index.html, as under nginx.
    return ServeStaticASGI(
        application,
        root=settings.STATIC_ROOT,
        prefix=settings.STATIC_URL,
        index_file=True,
        immutable_file_test=HASHED_FILE,
    )


application = ProtocolTypeRouter(
    {
        "http": with_static_files(
            URLRouter(
                [
                    # MCP for AI clients (docs/mcp.md), with or without the trailing slash; everything else is NetBox.
                    re_path(rf"^{re.escape(mcp_endpoint.PATH.rstrip('/'))}/?$", mcp_endpoint.MCPApplication()),
                    re_path(r"", django_application),
                ]
            )
        ),
        "websocket": SameOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [
                        path(WEBSOCKET_PATH, ChatConsumer.as_asgi()),
                    ]
                )
            )
        ),
    }
)

# The provider libraries load in the background while the server already answers (agents/warmup.py).
warmup.start()
