"""The ASGI application: all of NetBox plus the chat WebSocket, in one server.

NetBox 4.7 ships only a WSGI module. Run this one instead (or next to gunicorn, with the proxy sending
``/plugins/chatbox/ws/`` here)::

    uvicorn netbox_chatbox.asgi:application --host 0.0.0.0 --port 8000

Django must be set up (``get_asgi_application()``) before anything imports models, so the
imports below it are deliberately late.
"""
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

from . import mcp_endpoint  # noqa: E402
from .consumers import ChatConsumer, SameOriginValidator  # noqa: E402

WEBSOCKET_PATH = f"{settings.BASE_PATH}plugins/chatbox/ws/"

application = ProtocolTypeRouter({
    # In development (DEBUG) serve static files too, as NetBox's runserver does; in production the
    # web server in front of NetBox serves them.
    "http": URLRouter([
        # MCP for AI clients (docs/mcp.md), with or without the trailing slash; everything else is NetBox.
        re_path(rf"^{re.escape(mcp_endpoint.PATH.rstrip('/'))}/?$", mcp_endpoint.MCPApplication()),
        re_path(r"", ASGIStaticFilesHandler(django_application) if settings.DEBUG else django_application),
    ]),
    "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter([
        path(WEBSOCKET_PATH, ChatConsumer.as_asgi()),
    ]))),
})
