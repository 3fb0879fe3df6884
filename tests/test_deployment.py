"""Issue 10: the deployments of docs/deployment.md, each with its real server processes on the test database.

Through each one, as a browser and a script would: a NetBox page, static files (NetBox's and the plugin's,
collected into STATIC_ROOT by scripts/test.sh as `netbox collectstatic` does), a chat over the WebSocket and
a chat streamed as Server-Sent Events. Path B answers from the fake Ollama (no CLI process: quick turns).

1. one ASGI server for everything: uvicorn with two workers;
2. NetBox's documented layout: nginx serving /static/ and proxying pages to gunicorn, with the shipped
   config/nginx-chatbox.conf sending the socket and the streamed API to uvicorn;
3. granian (netbox-docker's server) in ASGI mode.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from netbox_chatbox.preferences import PREFERENCE_PATH

from .chat_clients import WS_PATH, session_cookie
from .conftest import token_for
from .servers import free_port, stop_group, uvicorn_command, uvicorn_workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("deployment")]

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
SNIPPET = ROOT / "config" / "nginx-chatbox.conf"
SNIPPET_UPSTREAM = "proxy_pass http://127.0.0.1:8002;"  # where the shipped snippet expects the ASGI server
CHAT_API = "/api/plugins/chatbox/chat/"
HASHED_FONT = re.compile(r"^Inter-Regular-[0-9A-Z]{8}\.woff2$")  # NetBox's esbuild output names


@pytest.fixture(scope="module")
def static_root():
    from django.conf import settings

    root = Path(settings.STATIC_ROOT)
    assert (root / "setmode.js").is_file(), f"{root} is empty: run the tests with scripts/test.sh (collectstatic)"
    return root


@pytest.fixture(scope="module")
def launch(django_db_setup, fake_ollama_server, static_root, tmp_path_factory):
    """launch(name, command, ready_url=None) → a server process on the test database, stopped after the module."""
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "netbox.settings",
        "NETBOX_CONFIGURATION": "configuration",
        "PYTHONPATH": f"{ROOT / 'devconf'}:{ROOT}",
        "NETBOX_DB": settings.DATABASES["default"]["NAME"],
        "LITELLM_ENABLED": "1",
        "LITELLM_PROXY_URL": "",
        "OLLAMA_BASE_URL": fake_ollama_server.url,
        "NETBOX_DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
    }
    logs = tmp_path_factory.mktemp("deployment")
    started = []

    def start(name, command, ready_url=None):
        log = logs / f"{name}.log"
        with open(log, "wb") as out:  # the child process has its own copy of the descriptor
            process = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        started.append((process, log))
        if ready_url:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, f"{name} stopped:\n{log.read_text()[-3000:]}"
                try:
                    # A worker's first page loads NetBox's URLs and plugins: seconds on a busy machine.
                    if httpx.get(ready_url, timeout=30).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{name} did not start:\n{log.read_text()[-3000:]}"
                time.sleep(0.3)
        return log

    yield start
    for process, _log in started:
        stop_group(process)
    for _process, log in started:
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def asgi_server(launch):
    """uvicorn with two workers: recipe 1 on its own, and the ASGI server behind nginx in recipe 2 (one start)."""
    port = free_port()
    log = launch("uvicorn-2-workers", uvicorn_command(port, *uvicorn_workers(2)), f"http://127.0.0.1:{port}/login/")
    return {"port": port, "url": f"http://127.0.0.1:{port}", "log": log}


@pytest.fixture(scope="module")
def one_uvicorn(asgi_server):
    return asgi_server["url"]


@pytest.fixture(scope="module")
def granian(launch):
    port = free_port()
    launch(
        "granian",
        [
            str(Path(sys.executable).parent / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "netbox_chatbox.asgi:application",
        ],
        f"http://127.0.0.1:{port}/login/",
    )
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def nginx_layout(launch, asgi_server, static_root, tmp_path_factory):
    """nginx in front of gunicorn (pages, as NetBox's contrib/nginx.conf) and uvicorn (the shipped snippet)."""
    assert os.access(NGINX, os.X_OK), "nginx is missing: scripts/test.sh installs Debian's nginx"
    gunicorn_port, uvicorn_port, nginx_port = free_port(), asgi_server["port"], free_port()
    launch(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "netbox.wsgi:application",
            "--bind",
            f"127.0.0.1:{gunicorn_port}",
            "--workers",
            "1",
            "--threads",
            "3",
            "--timeout",
            "120",
        ],
        f"http://127.0.0.1:{gunicorn_port}/login/",
    )

    home = tmp_path_factory.mktemp("nginx")
    snippet = SNIPPET.read_text()
    assert snippet.count(SNIPPET_UPSTREAM) == 2, "both locations of the snippet go to the ASGI server"
    (home / "chatbox.conf").write_text(
        snippet.replace(SNIPPET_UPSTREAM, f"proxy_pass http://127.0.0.1:{uvicorn_port};")
    )
    # NetBox's contrib/nginx.conf without TLS, with the snippet included as docs/deployment.md says.
    (home / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {home}/access.log;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    server {{
        listen 127.0.0.1:{nginx_port};
        server_name _;
        client_max_body_size 25m;
        location /static/ {{
            alias {static_root}/;
        }}
        include {home}/chatbox.conf;
        location / {{
            proxy_pass http://127.0.0.1:{gunicorn_port};
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
""")
    launch(
        "nginx",
        [NGINX, "-p", str(home), "-c", str(home / "nginx.conf"), "-e", str(home / "error.log")],
        f"http://127.0.0.1:{nginx_port}/login/",
    )
    return {"url": f"http://127.0.0.1:{nginx_port}", "uvicorn_log": asgi_server["log"]}


@pytest.fixture
def user_on_ollama(chat_user, fake_ollama):
    chat_user.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    return chat_user


# --- what each deployment must do ---------------------------------------------------------------


async def page_and_static_files(url, cookie, static_root):
    async with httpx.AsyncClient(base_url=url, headers={"Cookie": cookie}, timeout=30) as http:
        page = await http.get("/plugins/chatbox/")
        assert page.status_code == 200 and 'id="chatbox-input"' in page.text and "alice" in page.text
        # The files every NetBox page loads first (a 404 sends the browser to /media-failure/), and the plugin's.
        for name in (
            "setmode.js",
            "netbox.css",
            "netbox.js",
            "netbox_chatbox/page.js",
            "netbox_chatbox/client.js",
            "netbox_chatbox/chat.css",
        ):
            response = await http.get(f"/static/{name}", params={"v": "4.7.3"})
            assert response.status_code == 200, name
            assert response.content == (static_root / name).read_bytes(), name
        assert (await http.get("/static/no-such-file.js")).status_code == 404
    return page


async def socket_chat(url, cookie, fake_ollama):
    fake_ollama.reply("Over ", "the socket.")
    async with connect(url.replace("http", "ws") + WS_PATH, additional_headers={"Cookie": cookie}, origin=url) as ws:
        assert json.loads(await ws.recv())["type"] == "session"
        await ws.send(json.dumps({"type": "chat", "message": "Which transport?"}))
        events = []
        while not events or events[-1]["type"] not in ("complete", "error"):
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
    assert events[-1]["type"] == "complete", events
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Over the socket."


async def sse_chat(url, token, fake_ollama):
    fake_ollama.reply("As ", "events.")
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as http,
        http.stream(
            "POST",
            CHAT_API,
            json={"message": "And SSE?"},
            headers={"Authorization": token, "Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join([chunk async for chunk in response.aiter_text()])
    events = [json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "complete", events
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "As events."


async def through(url, user, fake_ollama, static_root):
    cookie = await sync_to_async(session_cookie)(user)
    token = await sync_to_async(token_for)(user)
    await page_and_static_files(url, cookie, static_root)
    await socket_chat(url, cookie, fake_ollama)
    await sse_chat(url, token, fake_ollama)
    return cookie


async def assert_cache_headers(url, static_root):
    """Content-hashed names are cached for good; the rest briefly (NetBox's carry ?v=<release>)."""
    font = next(p.name for p in static_root.iterdir() if HASHED_FONT.match(p.name))
    async with httpx.AsyncClient(base_url=url) as http:
        hashed = await http.get(f"/static/{font}")
        plain = await http.get("/static/setmode.js")
        again = await http.get("/static/setmode.js", headers={"If-None-Match": plain.headers["etag"]})
    assert hashed.status_code == 200 and "immutable" in hashed.headers["cache-control"]
    assert re.search(r"max-age=(\d+)", hashed.headers["cache-control"])[1] == str(10 * 365 * 24 * 3600)
    assert plain.headers["cache-control"] == "max-age=60, public"
    assert again.status_code == 304


# --- the deployments ----------------------------------------------------------------------------


async def test_one_uvicorn_with_workers_serves_pages_static_files_socket_and_sse(
    one_uvicorn, user_on_ollama, fake_ollama, static_root
):
    await through(one_uvicorn, user_on_ollama, fake_ollama, static_root)
    await assert_cache_headers(one_uvicorn, static_root)
    async with httpx.AsyncClient(base_url=one_uvicorn) as http:
        docs = await http.get("/static/docs/")  # NetBox's "Docs" link
    assert docs.status_code == 200 and "NetBox" in docs.text


async def test_granian_serves_pages_static_files_socket_and_sse(granian, user_on_ollama, fake_ollama, static_root):
    await through(granian, user_on_ollama, fake_ollama, static_root)
    await assert_cache_headers(granian, static_root)


async def test_nginx_gunicorn_and_uvicorn_as_netbox_documents(nginx_layout, user_on_ollama, fake_ollama, static_root):
    url = nginx_layout["url"]
    seen = nginx_layout["uvicorn_log"].stat().st_size  # what uvicorn logged before (recipe 1 uses it directly)
    cookie = await through(url, user_on_ollama, fake_ollama, static_root)
    # The page came from gunicorn; the socket and the stream went to uvicorn (its access log).
    uvicorn_log = nginx_layout["uvicorn_log"].read_bytes()[seen:].decode()
    assert '"WebSocket /plugins/chatbox/ws/"' in uvicorn_log and f'"POST {CHAT_API} HTTP/1.1" 200' in uvicorn_log
    assert '"GET /plugins/chatbox/ HTTP/1.1"' not in uvicorn_log
    async with httpx.AsyncClient(base_url=url) as http:
        static = await http.get("/static/setmode.js")
    assert static.headers["server"].startswith("nginx")  # nginx serves the files itself

    # The socket's Origin check still holds behind the proxy: another site's page is refused.
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            url.replace("http", "ws") + WS_PATH, additional_headers={"Cookie": cookie}, origin="http://evil.example"
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_nginx_passes_streamed_events_on_as_they_come(nginx_layout, user_on_ollama, fake_ollama):
    """The first words reach the client while the model still holds back the rest (nothing buffers)."""
    token = await sync_to_async(token_for)(user_on_ollama)
    fake_ollama.reply("First ", "words.", chunk_delay=60)
    async with (
        httpx.AsyncClient(base_url=nginx_layout["url"], timeout=60) as http,
        http.stream(
            "POST",
            CHAT_API,
            json={"message": "Stream?"},
            headers={"Authorization": token, "Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200

        async def first_delta():
            async for line in response.aiter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["type"] == "delta":
                    return json.loads(line[6:])["text"]

        assert await asyncio.wait_for(first_delta(), 45) == "First "
    fake_ollama.reset()  # releases the held-back rest
