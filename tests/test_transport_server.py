"""Issue 5: the plugin's ASGI application under a real uvicorn server — NetBox pages, the socket, SSE.

One uvicorn process for this module, on the test database; clients are real network clients
(websockets, httpx) with a real NetBox session cookie or API token.
"""

import asyncio
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from netbox_chatbox.models import Message
from netbox_chatbox.preferences import PREFERENCE_PATH

from .chat_clients import WS_PATH, session_cookie
from .conftest import token_for
from .servers import free_port, uvicorn_command, wait_serving

# One worker (pytest-xdist) runs this module: its tests share one server process.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("transport-server")]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, fake_ollama_server, tmp_path_factory):
    """``uvicorn netbox_chatbox.asgi:application`` on the test database, path B pointed at the fake Ollama."""
    from django.conf import settings

    port = free_port()
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "netbox.settings",
        "NETBOX_CONFIGURATION": "configuration",
        "PYTHONPATH": f"{ROOT / 'devconf'}:{ROOT}",
        "NETBOX_DB": settings.DATABASES["default"]["NAME"],
        "LITELLM_ENABLED": "1",
        "OLLAMA_BASE_URL": fake_ollama_server.url,
        "NETBOX_DEBUG": "0",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            uvicorn_command(port, "--lifespan", "off"),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_serving(process, url, log, timeout=90)
    yield url
    process.terminate()
    process.wait(15)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture
def on_ollama(chat_user, fake_ollama):
    chat_user.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    return fake_ollama


async def test_netbox_pages_socket_and_sse_from_one_server(server, chat_user, on_ollama):
    on_ollama.reply("Served ", "by uvicorn.")
    on_ollama.reply("Streamed ", "as SSE.")
    cookie = await sync_to_async(session_cookie)(chat_user)
    async with httpx.AsyncClient(base_url=server, headers={"Cookie": cookie}) as http:
        page = await http.get("/plugins/chatbox/")
        assert page.status_code == 200 and "alice" in page.text  # a NetBox page, for the logged-in user
        assert (await http.get("/api/status/")).status_code == 200

    ws_url = server.replace("http", "ws") + WS_PATH
    async with connect(ws_url, additional_headers={"Cookie": cookie}, origin=server) as ws:
        session = json.loads(await ws.recv())
        assert session["type"] == "session" and session["model"]["id"] == "ollama-qwen2.5"
        await ws.send(json.dumps({"type": "chat", "message": "Who serves this?"}))
        events = []
        while not events or events[-1]["type"] not in ("complete", "error"):
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Served by uvicorn."
    assert events[-1]["type"] == "complete"

    token = await sync_to_async(token_for)(chat_user)
    async with (
        httpx.AsyncClient(base_url=server, timeout=60) as http,
        http.stream(
            "POST",
            "/api/plugins/chatbox/chat/",
            json={"message": "And SSE?"},
            headers={"Authorization": token, "Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join([chunk async for chunk in response.aiter_text()])
    sse = [json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")]
    assert "".join(e["text"] for e in sse if e["type"] == "delta") == "Streamed as SSE."
    assert sse[-1]["type"] == "complete"
    stored = await sync_to_async(
        lambda: sorted(Message.objects.filter(role="assistant").values_list("content", flat=True))
    )()
    assert stored == ["Served by uvicorn.", "Streamed as SSE."]


async def test_anonymous_and_cross_site_sockets_get_403(server, chat_user):
    ws_url = server.replace("http", "ws") + WS_PATH
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url, origin=server):
            pass
    assert refused.value.response.status_code == 403
    cookie = await sync_to_async(session_cookie)(chat_user)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url, additional_headers={"Cookie": cookie}, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
