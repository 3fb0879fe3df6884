"""What the tests that start real NetBox servers share: a free port, and the plugin's ASGI app under uvicorn."""

import socket
import sys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def uvicorn_command(port, *options) -> list[str]:
    """uvicorn serving the plugin's ASGI application on 127.0.0.1:``port`` (a number, or "{port}" to fill in)."""
    return [
        sys.executable, "-m", "uvicorn", "netbox_chatbox.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), *options,
    ]  # fmt: skip
