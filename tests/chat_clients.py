"""Test clients for the chat transports (issue 5): a WebSocket on the plugin's real ASGI application.

Sockets authenticate the way browsers and scripts do: a real NetBox session cookie (from the test
client's ``force_login``) or a real v2 API token in the ``Authorization`` header.
"""

import asyncio
import json
import os

from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.test import Client

WS_PATH = "/plugins/chatbox/ws/"
HOST = "testserver"


def session_cookie(user) -> str:
    """A real NetBox login session for ``user``, as the browser's Cookie header."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@sync_to_async
def only_answer(user):
    """The one assistant message stored in ``user``'s conversations."""
    from netbox_chatbox.models import Message

    return Message.objects.filter(conversation__owner=user, role="assistant").get()


class Socket:
    """A connected chat WebSocket (ASGI messages, as a server would pass them) with small helpers.

    (Channels' own WebsocketCommunicator needs daphne installed; this is the same few lines.)
    """

    def __init__(self, communicator):
        self.communicator = communicator

    async def send(self, payload):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        await self.communicator.send_input({"type": "websocket.receive", "text": payload})

    async def send_bytes(self, payload: bytes):
        await self.communicator.send_input({"type": "websocket.receive", "bytes": payload})

    async def event(self, timeout=10) -> dict:
        message = await self.communicator.receive_output(timeout)
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def until(self, *types, timeout=30) -> list[dict]:
        """Events up to and including the first one whose type is in ``types``."""
        events = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.event(max(0.1, deadline - loop.time()))
            events.append(event)
            if event["type"] in types:
                return events

    async def chat(self, message, timeout=60) -> list[dict]:
        """One turn: the events up to its ``complete`` or ``error``."""
        await self.send({"type": "chat", "message": message})
        return await self.until("complete", "error", timeout=timeout)

    async def nothing_more(self, timeout=0.3) -> bool:
        return await self.communicator.receive_nothing(timeout)

    async def close(self, timeout=30):
        """The client goes away; returns when the server has finished with the connection."""
        await self.communicator.send_input({"type": "websocket.disconnect", "code": 1001})
        await self.communicator.wait(timeout)


async def open_socket(user=None, token=None, origin=f"http://{HOST}", headers=(), cookies=""):
    """Open the socket as a browser page of this NetBox (cookie + Origin) or a script (token);
    ``cookies``: more of the page's cookies (e.g. netbox-branching's ``active_branch=<id>``).

    Returns (Socket, None) when accepted or (None, close code) when refused at the handshake.
    """
    from netbox_chatbox.asgi import application

    all_headers = [(b"host", HOST.encode()), *headers]
    if origin:
        all_headers.append((b"origin", origin.encode()))
    if user is not None:
        cookie = await sync_to_async(session_cookie)(user)
        all_headers.append((b"cookie", f"{cookie}; {cookies}".encode() if cookies else cookie.encode()))
    if token is not None:
        all_headers.append((b"authorization", token.encode()))
    scope = {
        "type": "websocket",
        "path": WS_PATH,
        "query_string": b"",
        "headers": all_headers,
        "subprotocols": [],
        "client": ("127.0.0.1", 50000),
        "server": (HOST, 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "websocket.connect"})
    response = await communicator.receive_output(30)
    if response["type"] == "websocket.close":  # the server answers the handshake with HTTP 403
        await communicator.send_input({"type": "websocket.disconnect", "code": 1006})
        await communicator.wait(5)
        return None, response.get("code", 1000)
    assert response["type"] == "websocket.accept", response
    return Socket(communicator), None


def process_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (read from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def child_pids(pid: int = None) -> set[int]:
    """All live descendants of a process (default: this test process), from /proc."""
    pid = pid or os.getpid()
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found
