"""A hidden object reads like a missing one end to end: through the chat WebSocket (the plugin's ASGI
application, path B on the fake Ollama) and through the LiteLLM proxy mode (a real proxy process). What the
model receives and what the browser is shown must not name it (issue 15; the mechanisms are unit-tested in
test_tools_metamorphic)."""

import json

import pytest
from asgiref.sync import sync_to_async
from dcim.models import Site
from ipam.models import Prefix

from netbox_chatbox.preferences import PREFERENCE_PATH
from tests.fakes.helpers import ToolEnd, chat, of_type, run

from .chat_clients import open_socket
from .conftest import grant

pytestmark = pytest.mark.django_db(transaction=True)  # tools run in their own threads: committed data
FIELDS = ["prefix", "scope", "scope_id", "scope_type"]


def _world(user):
    """A prefix on a site the user may not view, and a filter that would read through that site."""
    hidden = Site.objects.create(name="e2e-hidden-site", slug="e2e-hidden-site")
    Site.objects.create(name="e2e-visible-site", slug="e2e-visible-site")
    prefix = Prefix.objects.create(prefix="10.77.0.0/16", scope=hidden, status="active")
    grant(user, Site, ["view"], {"slug": "e2e-visible-site"})
    grant(user, Prefix, ["view"])
    return prefix, hidden


def _tool_messages(fake):
    return [m["content"] for m in fake.chat_requests()[-1]["messages"] if m["role"] == "tool"]


def _assert_hidden(tool_messages, hidden):
    prefix_result, filtered = (json.loads(m) for m in tool_messages)
    assert prefix_result["object"]["prefix"] == "10.77.0.0/16"
    assert {k: prefix_result["object"][k] for k in ("scope", "scope_id", "scope_type")} == {
        "scope": None,
        "scope_id": None,
        "scope_type": None,
    }
    assert filtered == {
        "error": "filter 'scope_id' cannot be used on ipam.prefix: it reads the generic relation "
        "'scope', which may point to objects your permissions do not let you view"
    }
    assert all(hidden.name not in m for m in tool_messages)


def _script(fake, prefix, hidden):
    fake.tool_calls(
        ("get_object", {"object_type": "ipam.prefix", "id": prefix.pk, "fields": FIELDS}),
        ("count_objects", {"object_type": "ipam.prefix", "filters": {"scope_id": hidden.pk}}),
    )
    fake.reply("One prefix, no site.")


async def test_websocket_answers_name_no_hidden_object(chat_user, use_fake_ollama):
    await sync_to_async(chat_user.config.set)(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    prefix, hidden = await sync_to_async(_world)(chat_user)
    _script(use_fake_ollama, prefix, hidden)
    socket, _ = await open_socket(chat_user)
    await socket.event()  # session
    events = await socket.chat("Where is 10.77.0.0/16?")
    assert events[-1]["type"] == "complete"
    ends = [e for e in events if e["type"] == "tool_end"]
    assert [e["ok"] for e in ends] == [True, False]
    assert hidden.name not in json.dumps(events)
    _assert_hidden(_tool_messages(use_fake_ollama), hidden)
    await socket.close()


def test_litellm_proxy_answers_name_no_hidden_object(use_litellm_proxy, fake_ollama, chatbox_config, chat_user):
    chatbox_config(litellm_max_retries=0)
    prefix, hidden = _world(chat_user)
    _script(fake_ollama, prefix, hidden)
    _, (events,) = run(chat, "ollama-qwen2.5", chat_user, "Where is 10.77.0.0/16?")
    assert [e.ok for e in of_type(events, ToolEnd)] == [True, False]
    _assert_hidden(_tool_messages(fake_ollama), hidden)
