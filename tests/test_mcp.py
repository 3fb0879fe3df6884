"""Issue 14: the MCP endpoint, spoken to by the official ``mcp`` client library over real HTTP.

One uvicorn process (the plugin's ASGI application) serves this module on the test database; users,
tokens and NetBox objects are committed (transactional tests) so the server sees them. Every tool
result is compared with what :func:`run_tool` gives the same user for the same arguments: MCP clients
see exactly the chat's view.
"""

import json
import os
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import httpx2
import pytest
from asgiref.sync import sync_to_async
from dcim.models import Site
from django.contrib.auth import get_user_model
from django.utils import timezone
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from users.constants import TOKEN_PREFIX
from users.models import Token

from netbox_chatbox.models import Conversation
from netbox_chatbox.tools import TOOLS, enabled_tools, run_tool

from .conftest import grant, token_for
from .servers import free_port, uvicorn_command

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("mcp-server")]

ROOT = Path(__file__).resolve().parent.parent
MCP_PATH = "/api/plugins/chatbox/mcp/"


def _server_env() -> dict:
    from django.conf import settings

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "netbox.settings",
        "NETBOX_CONFIGURATION": "configuration",
        "PYTHONPATH": f"{ROOT / 'devconf'}:{ROOT}",
        "NETBOX_DB": settings.DATABASES["default"]["NAME"],
        "NETBOX_DEBUG": "0",
    }


def _start(command, log, env):
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [arg.format(port=port) for arg in command], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            httpx.get(f"{url}/login/", timeout=30)  # a cold first page can take seconds on a busy machine
            return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    pytest.fail(f"server did not start: {log.read_text()}")


def _stop(process, log):
    process.terminate()
    process.wait(15)
    text = log.read_text()
    assert "Traceback" not in text, text


SERVERS = {
    # the plugin's ASGI application: asgi.py routes the path to MCPApplication
    "uvicorn": uvicorn_command("{port}", "--lifespan", "off"),
    # NetBox as it ships (WSGI only): the plugin's Django view answers
    "gunicorn": [
        sys.executable,
        "-m",
        "gunicorn",
        "netbox.wsgi:application",
        "--bind",
        "127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "4",
    ],
}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """NetBox + the plugin under uvicorn, then under gunicorn, on the test database; yields the MCP URL."""
    log = tmp_path_factory.mktemp(request.param) / "server.log"
    process, url = _start(SERVERS[request.param], log, _server_env())
    yield url + MCP_PATH
    _stop(process, log)


@asynccontextmanager
async def mcp_client(url, token=None, headers=None):
    """An initialized MCP client session, authenticating with ``token`` (an Authorization header value)."""
    headers = {**({"Authorization": token} if token else {}), **(headers or {})}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def tool_json(result) -> dict:
    assert len(result.content) == 1 and result.content[0].type == "text"
    return json.loads(result.content[0].text)


@pytest.fixture
def sites(db):
    return {slug: Site.objects.create(name=slug.upper(), slug=slug) for slug in ("ams1", "fra1", "lon1")}


@pytest.fixture
def mcp_user(db):
    """carol: the ``mcp`` action, and may view only the site ams1."""
    user = get_user_model().objects.create_user("carol", password="carol-pass-123")
    grant(user, Conversation, ["mcp"])
    grant(user, Site, ["view"], constraints={"slug": "ams1"})
    return user


async def as_user(name, arguments, user):
    return await sync_to_async(run_tool)(name, arguments, user)


async def test_superuser_lists_and_calls_the_registrys_tools(server, superuser, sites):
    token = await sync_to_async(token_for)(superuser)
    async with mcp_client(server, token) as client:
        listed = await client.list_tools()
        assert [tool.name for tool in listed.tools] == list(enabled_tools())  # changes are off by default
        for tool in listed.tools:
            assert tool.input_schema == TOOLS[tool.name].input_schema
            assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
        arguments = {"object_type": "dcim.site", "fields": ["name", "slug"], "ordering": ["slug"]}
        result = await client.call_tool("query_objects", arguments)
        assert not result.is_error
        data = tool_json(result)
        assert [site["slug"] for site in data["results"]] == ["ams1", "fra1", "lon1"]
        assert data == await as_user("query_objects", arguments, superuser)


async def test_constrained_user_sees_exactly_the_chats_view(server, mcp_user, sites):
    token = await sync_to_async(token_for)(mcp_user)
    async with mcp_client(server, token) as client:
        for name, arguments in [
            ("query_objects", {"object_type": "dcim.site", "fields": ["name", "slug"]}),
            ("count_objects", {"object_type": "dcim.site"}),
            ("search", {"query": "fra1"}),
            ("get_object", {"object_type": "dcim.site", "id": sites["fra1"].pk}),
            ("get_object", {"object_type": "dcim.site", "id": sites["ams1"].pk, "fields": ["name"]}),
        ]:
            result = await client.call_tool(name, arguments)
            assert tool_json(result) == await as_user(name, arguments, mcp_user), (name, arguments)
        listed = tool_json(await client.call_tool("query_objects", {"object_type": "dcim.site"}))
        assert [site["display"] for site in listed["results"]] == ["AMS1"] and listed["count"] == 1
        hidden = await client.call_tool("get_object", {"object_type": "dcim.site", "id": sites["fra1"].pk})
        assert hidden.is_error and "not found" in tool_json(hidden)["error"]
        assert "FRA1" not in hidden.content[0].text


async def test_read_only_token_may_read(server, mcp_user, sites):
    """Every MCP tool only reads, so a token without NetBox's write flag is enough."""
    token = await sync_to_async(token_for)(mcp_user, write_enabled=False)
    async with mcp_client(server, token) as client:
        assert tool_json(await client.call_tool("count_objects", {"object_type": "dcim.site"}))["count"] == 1


async def test_v1_token_is_accepted(server, mcp_user, sites):
    token = await sync_to_async(Token.objects.create)(user=mcp_user, version=1)
    async with mcp_client(server, f"Token {token.token}") as client:
        assert tool_json(await client.call_tool("count_objects", {"object_type": "dcim.site"}))["count"] == 1


def _post(url, body, **headers):
    return httpx.post(
        url,
        content=body if isinstance(body, bytes) else json.dumps(body).encode(),
        timeout=30,
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers},
    )


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}},
}


async def test_the_docs_curl_example_one_post_without_initialize_and_without_trailing_slash(server, mcp_user, sites):
    token = await sync_to_async(token_for)(mcp_user)
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": "1"}},
    }
    for url in (server, server.rstrip("/")):
        response = await sync_to_async(_post)(url, call, Authorization=token)
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        assert "mcp-session-id" not in response.headers  # stateless
        result = response.json()["result"]
        assert json.loads(result["content"][0]["text"]) == await as_user("search", {"query": "1"}, mcp_user)


async def test_refusals_no_token_bad_token_expired_token_no_permission(server, mcp_user, chat_user, sites):
    def status_of(**headers):
        response = _post(server, INITIALIZE, **headers)
        assert response.json()["error"]["message"], response.text
        return response.status_code, response.headers.get("www-authenticate"), response.json()["error"]["message"]

    assert (await sync_to_async(status_of)())[:2] == (401, 'Bearer realm="NetBox"')
    assert (await sync_to_async(status_of)(Authorization=f"Bearer {TOKEN_PREFIX}nokey.nosecret"))[0] == 401
    good = await sync_to_async(token_for)(mcp_user)
    assert (await sync_to_async(status_of)(Authorization=good[:-3] + "xyz"))[0] == 401

    expired = await sync_to_async(Token.objects.create)(user=mcp_user, expires=timezone.now() - timedelta(hours=1))
    status, _, message = await sync_to_async(status_of)(
        Authorization=f"Bearer {TOKEN_PREFIX}{expired.key}.{expired.token}"
    )
    assert (status, message) == (401, "Token expired")
    for fields, reason in [
        ({"enabled": False}, "Token disabled"),
        ({"allowed_ips": ["10.0.0.0/8"]}, "Source IP 127.0.0.1 is not permitted"),
    ]:
        refused = await sync_to_async(Token.objects.create)(user=mcp_user, **fields)
        status, _, message = await sync_to_async(status_of)(
            Authorization=f"Bearer {TOKEN_PREFIX}{refused.key}.{refused.token}"
        )
        assert status == 401 and message.startswith(reason), message
    local = await sync_to_async(Token.objects.create)(user=mcp_user, allowed_ips=["127.0.0.0/8"])
    response = await sync_to_async(_post)(
        server, INITIALIZE, Authorization=f"Bearer {TOKEN_PREFIX}{local.key}.{local.token}"
    )
    assert response.status_code == 200

    # alice may chat, but was not given the mcp action
    status, _, message = await sync_to_async(status_of)(Authorization=await sync_to_async(token_for)(chat_user))
    assert status == 403 and "mcp" in message

    # the official client surfaces the refusal (NetBox's own message) as an error, not a hang
    with pytest.raises(Exception) as refused:
        async with mcp_client(server, "Bearer nbt_bad.token"):
            pass
    assert "MCPError(-32600, 'Invalid v2 token'" in repr(refused.value)


async def test_bad_input_gets_protocol_errors_and_the_server_keeps_serving(server, mcp_user, sites, request):
    token = await sync_to_async(token_for)(mcp_user)

    def post(body, **headers):
        return _post(server, body, Authorization=token, **headers)

    malformed = await sync_to_async(post)(b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == -32700
    not_rpc = await sync_to_async(post)({"hello": "world"})
    assert not_rpc.status_code == 400 and "error" in not_rpc.json()
    foreign = await sync_to_async(post)(INITIALIZE, Origin="http://evil.example")
    assert foreign.status_code == 403
    assert foreign.json()["error"]["message"] == "Requests from this Origin are not allowed."
    same_site = await sync_to_async(post)(INITIALIZE, Origin=server.split("/api/")[0])
    assert same_site.status_code == 200
    huge = await sync_to_async(post)(json.dumps({**INITIALIZE, "pad": "x" * 300_000}).encode())
    assert huge.status_code == 413

    def chunked(size):  # no Content-Length: the body is counted as it arrives
        return httpx.post(
            server,
            content=iter([b'{"pad": "', b"x" * size, b'"}']),
            timeout=30,
            headers={"Authorization": token, "Content-Type": "application/json", "Accept": "application/json"},
        )

    # Under WSGI, Django reads a body without Content-Length as empty: a parse error, nothing buffered
    expected = 400 if request.node.callspec.params["server"] == "gunicorn" else 413
    assert (await sync_to_async(chunked)(300_000)).status_code == expected
    stream = await sync_to_async(httpx.get)(server, headers={"Authorization": token, "Accept": "text/event-stream"})
    assert stream.status_code == 405 and stream.headers["allow"] == "POST"  # stateless: no stream to open

    async with mcp_client(server, token) as client:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("drop_database", {})
        assert unknown.value.code == -32602 and "Unknown tool" in unknown.value.message
        bad = await client.call_tool("get_object", {"object_type": "dcim.site", "id": "seven"})
        assert bad.is_error and "invalid arguments" in tool_json(bad)["error"]
        extra = await client.call_tool("count_objects", {"object_type": "dcim.site", "sql": "DROP TABLE x"})
        assert extra.is_error and "invalid arguments" in tool_json(extra)["error"]
        # still serving, to the same client
        assert tool_json(await client.call_tool("count_objects", {"object_type": "dcim.site"}))["count"] == 1


# --- a real third-party client: the Claude Code CLI bundled with claude-agent-sdk ----------------------


def claude_cli(args, home, fake_anthropic, timeout=120):
    """Run the bundled Claude Code CLI offline: a private HOME, the fake Anthropic API, no other traffic."""
    import claude_agent_sdk

    binary = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    env = {
        **os.environ,
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": fake_anthropic.url,
        "ANTHROPIC_API_KEY": "sk-ant-fake-key-for-tests-0123456789",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "ENABLE_TOOL_SEARCH": "false",
    }
    return subprocess.run([str(binary), *args], cwd=home, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("server", ["uvicorn"], indirect=True)
async def test_claude_code_added_as_documented_answers_with_the_users_view(
    server, mcp_user, sites, fake_anthropic, tmp_path
):
    token = await sync_to_async(token_for)(mcp_user)
    # exactly the command docs/mcp.md gives
    added = await sync_to_async(claude_cli)(
        ["mcp", "add", "--transport", "http", "netbox", server, "--header", f"Authorization: {token}"],
        tmp_path,
        fake_anthropic,
    )
    assert added.returncode == 0, added.stdout + added.stderr

    arguments = {"object_type": "dcim.site", "fields": ["name", "slug"]}
    fake_anthropic.tool_call("mcp__netbox__query_objects", arguments)
    fake_anthropic.reply("You can see one site: AMS1.")
    answered = await sync_to_async(claude_cli)(
        ["-p", "Which sites can I see?", "--output-format", "json", "--allowedTools", "mcp__netbox__query_objects"],
        tmp_path,
        fake_anthropic,
    )
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert json.loads(answered.stdout)["result"] == "You can see one site: AMS1."

    offered = {tool["name"] for tool in fake_anthropic.conversation_requests()[0]["tools"]}
    assert {f"mcp__netbox__{name}" for name in enabled_tools()} <= offered
    (result,) = fake_anthropic.tool_results().values()
    assert json.loads(result) == await as_user("query_objects", arguments, mcp_user)
    assert "FRA1" not in result


# --- limits and usage, in-process (the same ASGI application, with settings changed for one test) ----


@asynccontextmanager
async def in_process_client(token):
    from netbox_chatbox.mcp_endpoint import MCPApplication

    transport = httpx2.ASGITransport(app=MCPApplication(), client=("127.0.0.1", 40000))
    async with (
        httpx2.AsyncClient(transport=transport, headers={"Authorization": token}, timeout=30) as http,
        streamable_http_client(f"http://testserver{MCP_PATH}", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_tool_calls_share_the_chats_rate_limit_and_are_logged_per_user_and_tool(
    mcp_user, sites, chatbox_config, caplog
):
    from django.core.cache import cache

    await sync_to_async(cache.clear)()  # the limit counts per user and minute, in Redis
    chatbox_config(rate_limit_per_minute=2)
    caplog.set_level("INFO", logger="netbox_chatbox.telemetry")
    token = await sync_to_async(token_for)(mcp_user)
    async with in_process_client(token) as client:
        for _ in range(2):
            assert not (await client.call_tool("count_objects", {"object_type": "dcim.site"})).is_error
        limited = await client.call_tool("count_objects", {"object_type": "dcim.site"})
    assert limited.is_error and limited.content[0].text.startswith("Rate limited: 2 tool calls")
    events = [record.chatbox for record in caplog.records if record.chatbox["event"] == "tool_call"]
    assert [(e["tool"], e["via"], e["user"], e["ok"], e.get("error")) for e in events] == [
        ("count_objects", "mcp", "carol", True, None),
        ("count_objects", "mcp", "carol", True, None),
        ("count_objects", "mcp", "carol", False, "rate_limited"),
    ]
    assert all(isinstance(e["duration_ms"], int) for e in events[:2])


async def test_a_proposal_needs_a_write_enabled_token_and_is_applied_only_in_netbox(mcp_user, chatbox_config):
    """Over MCP a proposal is stored for the user to apply in NetBox (the result links it); a read-only token,
    which may read everything the user may view, may not store one."""
    from netbox_chatbox.proposals.models import Proposal

    chatbox_config(enable_changes=True, rate_limit_per_minute=0)
    await sync_to_async(grant)(mcp_user, Site, ["add"])
    arguments = {"object_type": "dcim.site", "data": {"name": "BER1", "slug": "ber1"}}
    read_only = await sync_to_async(token_for)(mcp_user, write_enabled=False)
    async with in_process_client(read_only) as client:
        refused = await client.call_tool("propose_create", arguments)
        assert not (await client.call_tool("count_objects", {"object_type": "dcim.site"})).is_error
    assert refused.is_error and "write-enabled" in refused.content[0].text
    assert not await sync_to_async(Proposal.objects.exists)()
    async with in_process_client(await sync_to_async(token_for)(mcp_user)) as client:
        proposed = await client.call_tool("propose_create", arguments)
    assert not proposed.is_error, proposed.content[0].text
    result = tool_json(proposed)
    assert result["status"] == "pending" and result["apply_url"].endswith(f"/proposals/{result['proposal_id']}/apply/")
    assert not await sync_to_async(Site.objects.filter(slug="ber1").exists)()  # nothing applied


async def test_mcp_tool_calls_are_counted_in_netboxs_metrics(mcp_user, sites, chatbox_config, settings):
    from prometheus_client import REGISTRY

    settings.METRICS_ENABLED = True
    chatbox_config(rate_limit_per_minute=0)

    def count(outcome):
        return (
            REGISTRY.get_sample_value(
                "netbox_chatbox_mcp_tool_calls_total", {"tool": "count_objects", "outcome": outcome}
            )
            or 0
        )

    before = count("ok"), count("error")
    async with in_process_client(await sync_to_async(token_for)(mcp_user)) as client:
        for _ in range(2):
            assert not (await client.call_tool("count_objects", {"object_type": "dcim.site"})).is_error
        assert (await client.call_tool("count_objects", {"object_type": "dcim.nothing"})).is_error
    assert (count("ok") - before[0], count("error") - before[1]) == (2, 1)


async def test_disabled_endpoint_and_busy_server(mcp_user, chatbox_config):
    from netbox_chatbox import mcp_endpoint

    token = await sync_to_async(token_for)(mcp_user)
    transport = httpx2.ASGITransport(app=mcp_endpoint.MCPApplication(), client=("127.0.0.1", 40000))
    async with httpx2.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        timeout=30,
        headers={
            "Authorization": token,
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        },
    ) as http:
        chatbox_config(mcp_max_concurrent_requests=1)
        mcp_endpoint._slots.take()  # another request is being served
        try:
            busy = await http.post(MCP_PATH, json=INITIALIZE)
        finally:
            mcp_endpoint._slots.give()
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert (await http.post(MCP_PATH, json=INITIALIZE)).status_code == 200
        chatbox_config(mcp_enabled=False)
        assert (await http.post(MCP_PATH, json=INITIALIZE)).status_code == 404


def test_the_mcp_action_is_on_netboxs_permission_form(client, superuser):
    """(/api/schema/ still renders with the endpoint's Django view: tests/test_foundation.py checks it.)"""
    client.force_login(superuser)
    page = client.get("/users/permissions/add/")
    assert b'name="action_mcp"' in page.content and b"NetBox tools from your own AI client (MCP)" in page.content
