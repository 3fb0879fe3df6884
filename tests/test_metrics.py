"""Issue 16: the chat's Prometheus metrics in NetBox's own /metrics, with two worker processes.

A real ``uvicorn --workers 2`` serves NetBox + the plugin with ``METRICS_ENABLED`` and prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), path A against the fake Anthropic API (the real Claude
CLI), path B against the fake Ollama. Chats go over HTTP and the WebSocket; every scrape, whichever worker
answers it, must show counters that add up to the turns made and the tokens stored.
"""

import asyncio
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db.models import Sum
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from netbox_chatbox.models import Message
from netbox_chatbox.preferences import PREFERENCE_PATH

from .chat_clients import WS_PATH, session_cookie
from .conftest import token_for
from .fakes.fixtures import FAKE_ANTHROPIC_KEY
from .servers import free_port, stop_group, uvicorn_command, uvicorn_workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("metrics-server")]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, fake_ollama_server, fake_anthropic_server, tmp_path_factory):
    """Two uvicorn workers sharing one PROMETHEUS_MULTIPROC_DIR (as NetBox documents for several workers)."""
    from django.conf import settings

    port = free_port()
    base = tmp_path_factory.mktemp("metrics")
    multiproc = base / "prometheus"
    multiproc.mkdir()
    log = base / "server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "netbox.settings",
        "NETBOX_CONFIGURATION": "configuration",
        "PYTHONPATH": f"{ROOT / 'devconf'}:{ROOT}",
        "NETBOX_DB": settings.DATABASES["default"]["NAME"],
        "NETBOX_METRICS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "NETBOX_DEBUG": "0",
        "LITELLM_ENABLED": "1",
        "OLLAMA_BASE_URL": fake_ollama_server.url,
        "ANTHROPIC_API_KEY": FAKE_ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": fake_anthropic_server.url,
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            uvicorn_command(port, *uvicorn_workers(2), "--lifespan", "off"),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/metrics", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    else:
        stop_group(process)
        pytest.fail(f"uvicorn did not start: {log.read_text()}")
    yield url, multiproc
    stop_group(process)
    assert "Traceback" not in log.read_text(), log.read_text()


def scrape(url) -> dict:
    """{(name, frozenset(labels)): value} of the netbox_chatbox samples of one /metrics response."""
    response = httpx.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith("netbox_chatbox_"):
                samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def total(samples, name, **labels) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def _workers_with_turns(multiproc) -> set[str]:
    """Worker pids whose counter file holds chat turns (each process writes its own file)."""
    return {f.name for f in multiproc.glob("counter_*.db") if b"netbox_chatbox_turns" in f.read_bytes()}


def _chat(url, token, message, model):
    response = httpx.post(
        f"{url}/api/plugins/chatbox/chat/",
        json={"message": message, "model": model},
        headers={"Authorization": token, "Connection": "close"},
        timeout=90,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_counters_add_up_across_two_workers_and_both_paths(server, chat_user, fake_ollama, fake_anthropic):
    url, multiproc = server
    token = token_for(chat_user)
    fake_ollama.tool_call("count_objects", {"object_type": "dcim.site"})
    fake_ollama.reply("No sites yet.")
    assert _chat(url, token, "How many sites?", "ollama-qwen2.5")["answer"] == "No sites yet."

    # Path B turns at once, so that both workers answer some; then two path A turns (a CLI each).
    turns_b = 1
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            list(pool.map(lambda i: _chat(url, token, f"Question {i}", "ollama-qwen2.5"), range(4)))
            turns_b += 4
            if len(_workers_with_turns(multiproc)) == 2:
                break
    assert len(_workers_with_turns(multiproc)) == 2, "both workers should have answered"
    for i in range(2):
        fake_anthropic.reply("Claude ", f"answer {i}.")
        assert _chat(url, token, f"Claude question {i}", "claude-haiku-4-5")["answer"] == f"Claude answer {i}."

    stored = Message.objects.filter(role="assistant").aggregate(Sum("input_tokens"), Sum("output_tokens"))
    by_path = {
        path: Message.objects.filter(role="assistant", conversation__path=path).count() for path in ("sdk", "litellm")
    }
    assert by_path == {"litellm": turns_b, "sdk": 2}
    for _ in range(4):  # whichever worker answers the scrape, it reports every worker's counts
        samples = scrape(url)
        assert (
            total(samples, "netbox_chatbox_turns_total", model="ollama-qwen2.5", path="litellm", outcome="ok")
            == turns_b
        )
        assert total(samples, "netbox_chatbox_turns_total", model="claude-haiku-4-5", path="sdk", outcome="ok") == 2
        assert total(samples, "netbox_chatbox_tokens_total", direction="input") == stored["input_tokens__sum"]
        assert total(samples, "netbox_chatbox_tokens_total", direction="output") == stored["output_tokens__sum"]
        assert total(samples, "netbox_chatbox_tool_calls_total", tool="count_objects", outcome="ok") == 1
        assert total(samples, "netbox_chatbox_turn_duration_seconds_count") == turns_b + 2
        assert total(samples, "netbox_chatbox_time_to_first_token_seconds_count") == turns_b + 2
        assert total(samples, "netbox_chatbox_open_sessions") == 0  # each HTTP turn closes its session
        assert total(samples, "netbox_chatbox_claude_cli_processes") == 0


async def test_open_sessions_and_cli_processes_while_a_socket_chats(server, chat_user, fake_anthropic):
    url, _ = server
    await sync_to_async(chat_user.config.set)(PREFERENCE_PATH, "claude-haiku-4-5", commit=True)
    fake_anthropic.reply("Hello over the socket.")
    cookie = await sync_to_async(session_cookie)(chat_user)
    async with connect(url.replace("http", "ws") + WS_PATH, additional_headers={"Cookie": cookie}, origin=url) as ws:
        assert json.loads(await ws.recv())["type"] == "session"
        await ws.send(json.dumps({"type": "chat", "message": "Hi"}))
        events = []
        while not events or events[-1]["type"] not in ("complete", "error"):
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
        assert events[-1]["type"] == "complete"
        samples = await asyncio.to_thread(scrape, url)
        assert total(samples, "netbox_chatbox_open_sessions", path="sdk") == 1
        assert total(samples, "netbox_chatbox_claude_cli_processes") == 1
    for _ in range(50):  # the server closes the session after the socket goes away
        samples = await asyncio.to_thread(scrape, url)
        if total(samples, "netbox_chatbox_claude_cli_processes") == 0:
            break
        await asyncio.sleep(0.2)
    assert total(samples, "netbox_chatbox_open_sessions") == 0
    assert total(samples, "netbox_chatbox_claude_cli_processes") == 0
