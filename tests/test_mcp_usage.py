"""Issue 14: MCP tool calls on the usage page, its export and API, per user and tool next to the chat's.

The calls are made with the official ``mcp`` client library against the plugin's ASGI application
(in process, as tests/test_mcp.py's limit tests do); what an auditor with ``view_usage`` then sees is
read from the real page, CSV export and API.
"""

import csv
import io
import json
import logging
from contextlib import asynccontextmanager

import httpx2
import pytest
from asgiref.sync import sync_to_async
from dcim.models import Site
from django.contrib.auth import get_user_model
from django.db import connection
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from netbox_chatbox.models import Conversation, Message
from netbox_chatbox.tools import run_tool
from netbox_chatbox.usage_models import MCPToolCall

from .conftest import grant, token_for

pytestmark = pytest.mark.django_db(transaction=True)  # the tools run in threads with their own connections

API = "/api/plugins/chatbox/usage/"
PAGE = "/plugins/chatbox/usage/"
MCP_URL = "http://testserver/api/plugins/chatbox/mcp/"
NEEDLE = "hunter2-needle"  # an argument: it must never be stored or shown


@asynccontextmanager
async def mcp_client(token):
    """The official client, over HTTP to the plugin's ASGI application in this process."""
    from netbox_chatbox.mcp_endpoint import MCPApplication

    transport = httpx2.ASGITransport(app=MCPApplication(), client=("127.0.0.1", 40000))
    async with (
        httpx2.AsyncClient(transport=transport, headers={"Authorization": token}, timeout=30) as http,
        streamable_http_client(MCP_URL, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _user(name, actions, sites=None):
    user = get_user_model().objects.create_user(name, password=f"{name}-pass-123")
    if actions:
        grant(user, Conversation, actions)
    if sites is not None:
        grant(user, Site, ["view"], constraints={"slug__in": sites})
    return user


@pytest.fixture
def people(db):
    """carol and dave use MCP (carol sees one site), alice chats, dora audits usage."""
    for slug in ("ams1", "fra1"):
        Site.objects.create(name=slug.upper(), slug=slug)
    return {
        "carol": _user("carol", ["mcp"], ["ams1"]),
        "dave": _user("dave", ["mcp"], ["ams1", "fra1"]),
        "alice": _user("alice", ["chat"]),
        "dora": _user("dora", ["view_usage"]),
    }


def _chat_answer(user, tools):
    conversation = Conversation.objects.create(owner=user, model_id="auto", path="sdk")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="x",
        tool_calls=[{"id": str(i), "tool": f"mcp__netbox__{tool}", "ok": ok} for i, (tool, ok) in enumerate(tools)],
    )


def _token_get(api, user, path):
    return api(user, token=True).get(path)


def _calls(body):
    return {(r["username"], r["source"], r["tool"]): r for r in body["tool_calls"]}


async def test_mcp_calls_of_two_users_show_per_user_and_tool_next_to_the_chats(api, client, people, chatbox_config):
    chatbox_config(rate_limit_per_minute=0)
    await sync_to_async(_chat_answer)(people["alice"], [("search", True), ("count_objects", False)])
    async with mcp_client(await sync_to_async(token_for)(people["carol"])) as carol:
        for _ in range(2):
            assert not (await carol.call_tool("count_objects", {"object_type": "dcim.site"})).is_error
        assert (await carol.call_tool("count_objects", {"object_type": "dcim.nothing"})).is_error
        found = await carol.call_tool("search", {"query": NEEDLE})
    async with mcp_client(await sync_to_async(token_for)(people["dave"], write_enabled=False)) as dave:
        listed = await dave.call_tool("query_objects", {"object_type": "dcim.site", "fields": ["slug"]})
    assert json.loads(listed.content[0].text) == await sync_to_async(run_tool)(
        "query_objects", {"object_type": "dcim.site", "fields": ["slug"]}, people["dave"]
    )

    body = (await sync_to_async(_token_get)(api, people["dora"], API)).json()
    calls = _calls(body)
    figures = {key: (row["calls"], row["errors"], row["refused"]) for key, row in calls.items()}
    assert figures == {
        ("alice", "chat", "search"): (1, 0, 0),
        ("alice", "chat", "count_objects"): (1, 1, 0),
        ("carol", "mcp", "count_objects"): (3, 1, 0),
        ("carol", "mcp", "search"): (1, 0, 0),
        ("dave", "mcp", "query_objects"): (1, 0, 0),
    }
    dave_row = calls["dave", "mcp", "query_objects"]
    assert dave_row["result_chars"] == len(listed.content[0].text)
    assert dave_row["duration_p50_ms"] is not None and dave_row["user_id"] == people["dave"].pk
    assert calls["carol", "mcp", "search"]["result_chars"] == len(found.content[0].text)
    assert body["tool_call_totals"]["mcp"]["calls"] == 5 and body["tool_call_totals"]["mcp"]["errors"] == 1
    assert body["tool_call_totals"]["chat"]["calls"] == 2
    assert body["totals"]["tool_calls"] == 2  # the chat's figure per model is unchanged

    # filterable like the rest
    dora = await sync_to_async(api)(people["dora"])
    by_user = _calls((await sync_to_async(dora.get)(API, {"user": "dave"})).json())
    assert set(by_user) == {("dave", "mcp", "query_objects")}
    by_tool = _calls((await sync_to_async(dora.get)(API, {"tool": "search"})).json())
    assert set(by_tool) == {("alice", "chat", "search"), ("carol", "mcp", "search")}
    only_mcp = (await sync_to_async(dora.get)(API, {"source": "mcp"})).json()
    assert {key[1] for key in _calls(only_mcp)} == {"mcp"} and only_mcp["results"] == []
    only_chat = _calls((await sync_to_async(dora.get)(API, {"source": "chat"})).json())
    assert {key[1] for key in only_chat} == {"chat"}
    by_model = _calls((await sync_to_async(dora.get)(API, {"model": "auto"})).json())
    assert {key[1] for key in by_model} == {"chat"}  # MCP calls have no model
    assert (await sync_to_async(dora.get)(API, {"source": "slack"})).status_code == 400

    # the page, its table and its CSV export
    await sync_to_async(client.force_login)(people["dora"])
    page = (await sync_to_async(client.get)(PAGE, {"chart": "tool_calls"})).content.decode()
    assert 'data-total="mcp_tool_calls">5<' in page and 'id="chatbox-usage-tools"' in page
    assert 'data-model="MCP (own AI clients)" data-value="5"' in page  # the chart's MCP series
    export = await sync_to_async(client.get)(PAGE, {"export": "tool_calls", "tools-sort": "-calls"})
    assert export.status_code == 200 and "netbox_chatbox_tool_calls.csv" in export["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [(r["User"], r["Source"], r["Tool"], r["Calls"]) for r in rows][0] == ("carol", "mcp", "count_objects", "3")
    assert {(r["User"], r["Source"], r["Tool"]): int(r["Calls"]) for r in rows} == {
        key: row["calls"] for key, row in calls.items()
    }
    for text in (page, export.content.decode(), json.dumps(body)):
        assert NEEDLE not in text and "AMS1" not in text  # neither arguments nor results


async def test_refused_calls_are_counted_as_refused(api, people, chatbox_config):
    from django.core.cache import cache

    await sync_to_async(cache.clear)()  # the rate limit counts per user and minute, in Redis
    chatbox_config(rate_limit_per_minute=1, enable_changes=True)
    async with mcp_client(await sync_to_async(token_for)(people["carol"], write_enabled=False)) as carol:
        assert not (await carol.call_tool("count_objects", {"object_type": "dcim.site"})).is_error
        assert (await carol.call_tool("count_objects", {"object_type": "dcim.site"})).is_error  # rate limited
        assert (await carol.call_tool("propose_create", {"object_type": "dcim.site", "data": {}})).is_error
    dora = await sync_to_async(api)(people["dora"])
    body = (await sync_to_async(dora.get)(API, {"source": "mcp"})).json()
    figures = {key: (r["calls"], r["errors"], r["refused"]) for key, r in _calls(body).items()}
    assert figures == {("carol", "mcp", "count_objects"): (2, 0, 1), ("carol", "mcp", "propose_create"): (1, 0, 1)}
    assert body["tool_call_totals"]["mcp"]["refused"] == 2


async def test_mcp_usage_is_hidden_without_view_usage(api, client, people, chatbox_config):
    chatbox_config(rate_limit_per_minute=0)
    async with mcp_client(await sync_to_async(token_for)(people["carol"])) as carol:
        assert not (await carol.call_tool("count_objects", {"object_type": "dcim.site"})).is_error
    for name in ("carol", "dave", "alice"):  # using MCP or chatting is not seeing usage
        assert (await sync_to_async(_token_get)(api, people[name], API)).status_code == 403
        await sync_to_async(client.force_login)(people[name])
        assert (await sync_to_async(client.get)(PAGE)).status_code == 403
        assert (await sync_to_async(client.get)(PAGE, {"export": "tool_calls"})).status_code == 403
    dora = await sync_to_async(api)(people["dora"])
    assert (await sync_to_async(dora.get)(API)).json()["tool_call_totals"]["mcp"]["calls"] == 1


async def test_without_the_mcp_permission_the_official_client_is_refused_with_403(people):
    """alice may chat but was not given the mcp action: the client's initialize fails with NetBox's reason."""
    with pytest.raises(Exception) as refused:
        async with mcp_client(await sync_to_async(token_for)(people["alice"])):
            pass
    assert "may not use the MCP endpoint" in repr(refused.value)
    assert not await sync_to_async(MCPToolCall.objects.exists)()


def _move_table(source, target):
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {source} RENAME TO {target}")


async def test_a_recording_failure_does_not_fail_the_call(people, chatbox_config, caplog):
    """The usage table is missing (e.g. the plugin was upgraded without ``netbox migrate``): calls still answer."""
    chatbox_config(rate_limit_per_minute=0)
    caplog.set_level(logging.WARNING, logger="netbox_chatbox.mcp")
    table = MCPToolCall._meta.db_table
    arguments = {"object_type": "dcim.site", "fields": ["slug"]}
    async with mcp_client(await sync_to_async(token_for)(people["carol"])) as carol:
        await sync_to_async(_move_table)(table, f"{table}_away")
        try:
            result = await carol.call_tool("query_objects", arguments)
        finally:
            await sync_to_async(_move_table)(f"{table}_away", table)
        assert not result.is_error
        assert json.loads(result.content[0].text) == await sync_to_async(run_tool)(
            "query_objects", arguments, people["carol"]
        )
        assert "not recorded for the usage view" in caplog.text
        assert not await sync_to_async(MCPToolCall.objects.exists)()
        assert not (await carol.call_tool("query_objects", arguments)).is_error  # recorded again
    assert await sync_to_async(MCPToolCall.objects.count)() == 1


async def test_more_bad_input_gets_4xx_protocol_errors_and_nothing_recorded(people, chatbox_config):
    """Beyond tests/test_mcp.py's cases: a batch, arguments that are not an object, a huge tool name, a missing
    Accept or a wrong Content-Type are the protocol's 4xx errors (never a 500), and are not counted as calls."""
    from netbox_chatbox.mcp_endpoint import MCPApplication

    chatbox_config(rate_limit_per_minute=0)
    token = await sync_to_async(token_for)(people["carol"])
    headers = {"Authorization": token, "Accept": "application/json, text/event-stream"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    transport = httpx2.ASGITransport(app=MCPApplication(), client=("127.0.0.1", 40000))
    async with httpx2.AsyncClient(transport=transport, headers=headers, timeout=30) as http:
        answers = {
            "batch": await http.post(MCP_URL, json=[{**call, "params": {"name": "search", "arguments": {"q": 1}}}]),
            "string arguments": await http.post(MCP_URL, json={**call, "params": {"name": "search", "arguments": "x"}}),
            "huge name": await http.post(MCP_URL, json={**call, "params": {"name": "x" * 100_000, "arguments": {}}}),
            "no params": await http.post(MCP_URL, json=call),
            "no accept": await http.post(MCP_URL, json=call, headers={"Accept": "text/html"}),
            "batch of a huge call": await http.post(
                MCP_URL, json=[{**call, "params": {"name": "search", "arguments": {"query": "x" * 200_000}}}]
            ),
        }
        wrong_type = await http.post(MCP_URL, content=b"a=1", headers={"Content-Type": "text/plain"})
        assert (wrong_type.status_code, wrong_type.text) == (400, "Invalid Content-Type header")  # the SDK's answer
        for case, answer in answers.items():
            assert answer.status_code < 500, (case, answer.text)
            error = answer.json().get("error") or answer.json().get("result", {})
            assert error, (case, answer.text)
            assert len(answer.text) < 2000, case  # bounded: the huge name is not echoed back
    assert not await sync_to_async(MCPToolCall.objects.exists)()


def test_calls_through_the_django_view_are_recorded_too(client, people, chatbox_config):
    """A gunicorn-only NetBox answers MCP with the plugin's Django view: its calls count the same."""
    chatbox_config(rate_limit_per_minute=0)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": NEEDLE}},
    }
    answer = client.post(
        "/api/plugins/chatbox/mcp/",
        json.dumps(body),
        content_type="application/json",
        HTTP_ACCEPT="application/json, text/event-stream",
        HTTP_AUTHORIZATION=token_for(people["dave"]),
    )
    assert answer.status_code == 200 and "result" in answer.json()
    client.force_login(people["dora"])
    rows = client.get(API).json()["tool_calls"]
    assert [(r["username"], r["source"], r["tool"], r["calls"]) for r in rows] == [("dave", "mcp", "search", 1)]
