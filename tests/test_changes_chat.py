"""Changes through the chat, seen from the chat (issue 13): a proposal tool's result streams as a ``proposal``
event on both model paths and both transports, is stored with the answer and linked to its conversation;
diffs name related objects as the user may view them; an applied proposal links its objects and change
log. Real NetBox, PostgreSQL, the plugin's ASGI application, the fake providers."""

import http.server
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from core.models import ObjectChange
from dcim.models import Device, Site
from django.utils import timezone

from netbox_chatbox.models import Message, Proposal
from netbox_chatbox.preferences import PREFERENCE_PATH
from netbox_chatbox.tools import run_tool
from tests.conftest import grant
from tests.test_changes import ams_device_changer, apply, build
from tests.test_transport_http import CHAT_URL, SSE, sse_events

from .chat_clients import open_socket

pytestmark = pytest.mark.django_db(transaction=True)  # tools run in their own threads: committed data


@pytest.fixture
def world(chatbox_config):
    chatbox_config(enable_changes=True)
    return build()


def _proposal_events(events):
    types = [e["type"] for e in events]
    assert types.count("proposal") == 1, types
    at = types.index("proposal")
    assert types[at - 1] == "tool_end" and events[at - 1]["id"] == events[at]["id"]  # right after its tool
    return events[at]


def _assert_stored(event, owner):
    """The answer keeps the proposal with its tool call, and the proposal its conversation."""
    proposal = Proposal.objects.get(pk=event["proposal"]["proposal_id"], owner=owner)
    message = Message.objects.get(conversation__owner=owner, role="assistant")
    assert [call.get("proposal") for call in message.tool_calls] == [proposal.pk]
    assert proposal.conversation_id == message.conversation_id
    return proposal


def test_path_b_over_http_streams_the_proposal_and_apply_links_the_conversation(api, world, use_fake_ollama):
    owner, device = world["owner"], world["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    owner.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    use_fake_ollama.tool_call(
        "propose_update", {"object_type": "dcim.device", "id": device.pk, "data": {"status": "offline"}}
    )
    use_fake_ollama.reply("I proposed it; review the card.")
    events = sse_events(api(owner, token=True).post(CHAT_URL, {"message": "Take leaf1 offline"}, format="json", **SSE))
    assert events[-1]["type"] == "complete", events
    event = _proposal_events(events)
    card = event["proposal"]
    assert set(card) == {"proposal_id", "summary", "status", "count", "expires", "changes", "apply_url"}
    assert card["status"] == "pending" and card["count"] == 1
    (change,) = card["changes"]
    assert change["changes"] == {"status": {"before": "active", "after": "offline"}}
    assert change["url"] == device.get_absolute_url()
    proposal = _assert_stored(event, owner)
    device.refresh_from_db()
    assert device.status == "active"  # nothing applied by the chat

    response = apply(owner, proposal.pk)
    assert response.status_code == 200, response.json()
    assert "changelog_url" not in response.json()  # a link only for those who may view the change log
    grant(owner, ObjectChange, ["view"])
    body = api(owner, token=True).get(f"/api/plugins/chatbox/proposals/{proposal.pk}/").json()
    assert body["status"] == "applied"
    conversation_url = f"/plugins/chatbox/?conversation={proposal.conversation_id}"
    assert body["conversation_url"] == conversation_url
    change = ObjectChange.objects.get(changed_object_id=device.pk)
    assert conversation_url in change.message
    assert body["changelog_url"] == f"/core/changelog/?request_id={change.request_id}"
    # The conversation API (History, reloads) returns the stored call with its proposal id.
    stored = api(owner, token=True).get(f"/api/plugins/chatbox/conversations/{proposal.conversation_id}/").json()
    assert [c.get("proposal") for m in stored["messages"] for c in m.get("tool_calls") or []] == [proposal.pk]


async def test_path_a_over_the_socket_streams_the_proposal(world, use_fake_anthropic):
    owner, device = world["owner"], world["devices"]["ams1-leaf2"]
    await sync_to_async(ams_device_changer)(owner)
    await sync_to_async(owner.config.set)(PREFERENCE_PATH, "claude-haiku-4-5", commit=True)
    use_fake_anthropic.tool_call(
        "mcp__netbox__propose_update", {"object_type": "dcim.device", "id": device.pk, "data": {"serial": "SN-42"}}
    )
    use_fake_anthropic.reply("Proposed.")
    socket, _ = await open_socket(owner)
    await socket.event()  # session
    events = await socket.chat("Set the serial of leaf2 to SN-42")
    await socket.close()
    assert events[-1]["type"] == "complete", events
    event = _proposal_events(events)
    assert event["proposal"]["changes"][0]["changes"] == {"serial": {"before": "", "after": "SN-42"}}
    await sync_to_async(_assert_stored)(event, owner)


async def test_a_proposal_applied_while_its_answer_streams_names_its_conversation(world, use_fake_ollama):
    """The card comes with the tool's result, before the answer ends: an Apply then still links the change log
    to the conversation (stored with the question, before any tool runs)."""
    owner, device = world["owner"], world["devices"]["ams1-leaf1"]
    await sync_to_async(ams_device_changer)(owner)
    await sync_to_async(owner.config.set)(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    use_fake_ollama.tool_call(
        "propose_update", {"object_type": "dcim.device", "id": device.pk, "data": {"status": "offline"}}
    )
    use_fake_ollama.hang(60)  # the rest of the answer does not come until the user stops it
    socket, _ = await open_socket(owner)
    await socket.event()  # session
    await socket.send({"type": "chat", "message": "Take leaf1 offline"})
    card = (await socket.until("proposal", timeout=90))[-1]["proposal"]  # (a cold start imports litellm)
    response = await sync_to_async(apply)(owner, card["proposal_id"])
    assert response.status_code == 200, response.json()
    await socket.send({"type": "interrupt"})
    end = (await socket.until("complete", "error"))[-1]
    await socket.close()
    assert end["type"] == "complete" and end["interrupted"], end
    change = await ObjectChange.objects.aget(changed_object_id=device.pk)
    assert f"(proposal {card['proposal_id']}, /plugins/chatbox/?conversation={end['conversation']})" in change.message


def test_a_failed_proposal_streams_no_proposal_event(api, world, use_fake_ollama):
    owner = world["owner"]  # no permission to change devices
    owner.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    use_fake_ollama.tool_call(
        "propose_update",
        {"object_type": "dcim.device", "id": world["devices"]["ams1-leaf1"].pk, "data": {"status": "offline"}},
    )
    use_fake_ollama.reply("You may not.")
    events = sse_events(api(owner, token=True).post(CHAT_URL, {"message": "Take it offline"}, format="json", **SSE))
    assert [e["ok"] for e in events if e["type"] == "tool_end"] == [False]
    assert "proposal" not in [e["type"] for e in events]
    assert not Proposal.objects.exists()


def test_diffs_name_related_objects_and_hide_those_the_user_may_not_view(world):
    owner, device, sites = world["owner"], world["devices"]["ams1-leaf2"], world["sites"]
    hidden_site = Site.objects.create(name="SECRET-DC", slug="secret-dc")
    grant(owner, Device, ["view", "change"])
    grant(owner, Site, ["view"], {"slug__in": ["ams1", "fra1"]})
    for target, expected in (
        (sites["fra1"], {"id": sites["fra1"].pk, "display": "FRA1", "url": sites["fra1"].get_absolute_url()}),
        (hidden_site, {"display": "an object you may not view", "hidden": True}),
    ):
        result = run_tool(
            "propose_update", {"object_type": "dcim.device", "id": device.pk, "data": {"site": target.pk}}, owner
        )
        assert "error" not in result, result
        site = result["changes"][0]["changes"]["site"]
        assert site["before"] == {"id": sites["ams1"].pk, "display": "AMS1", "url": sites["ams1"].get_absolute_url()}
        assert site["after"] == expected
        assert "SECRET" not in json.dumps(result)


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_receiver():
    """A local HTTP server that records the JSON bodies POSTed to it."""
    _Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook.received
    server.shutdown()
    server.server_close()


def test_an_applied_proposal_fires_event_rules_and_webhooks_through_a_real_rqworker(world, webhook_receiver):
    """As for an API change: the event rule's webhook job goes to RQ (Redis), `netbox rqworker` runs it and the
    receiver gets the change, with the user and the request id of the change log."""
    from core.models import ObjectType
    from django.db import connection
    from extras.models import EventRule, Webhook

    url, received = webhook_receiver
    owner, device = world["owner"], world["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    webhook = Webhook.objects.create(name="chatbox-hook", payload_url=url, http_method="POST")
    rule = EventRule.objects.create(
        name="devices changed", event_types=["object_updated"], action_type="webhook", action_object=webhook
    )
    rule.object_types.set([ObjectType.objects.get_for_model(Device)])
    proposal_id = run_tool(
        "propose_update", {"object_type": "dcim.device", "id": device.pk, "data": {"serial": "HOOK-1"}}, owner
    )["proposal_id"]
    assert apply(owner, proposal_id).status_code == 200
    change = ObjectChange.objects.get(changed_object_id=device.pk)

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": f"{root}{os.pathsep}{root / 'devconf'}",
        "DJANGO_SETTINGS_MODULE": "netbox.settings",
        "NETBOX_DB": connection.settings_dict["NAME"],  # the test database
    }
    worker = subprocess.run(
        [sys.executable, "-m", "django", "rqworker", "--burst", "high", "default", "low"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert len(received) == 1, (received, worker.stderr[-3000:])
    (hook,) = received
    assert (hook["event"], hook["object_type"]) == ("updated", "dcim.device"), hook
    assert hook["data"]["id"] == device.pk and hook["data"]["serial"] == "HOOK-1"
    assert (hook["request"]["id"], hook["request"]["user"]) == (str(change.request_id), "changer")
    assert hook["snapshots"]["prechange"]["serial"] == "" and hook["snapshots"]["postchange"]["serial"] == "HOOK-1"


def test_expired_proposals_read_as_expired_and_the_system_job_stores_it(api, world):
    from netbox.registry import registry

    from netbox_chatbox.proposals.jobs import ExpireProposalsJob, expire_proposals

    owner, device = world["owner"], world["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    proposal_id = run_tool(
        "propose_update", {"object_type": "dcim.device", "id": device.pk, "data": {"serial": "LATE"}}, owner
    )["proposal_id"]
    url = f"/api/plugins/chatbox/proposals/{proposal_id}/"
    assert api(owner, token=True).get(url).json()["status"] == "pending"
    assert expire_proposals() == 0
    Proposal.objects.filter(pk=proposal_id).update(expires=timezone.now() - timedelta(seconds=1))
    assert api(owner, token=True).get(url).json()["status"] == "expired"  # on read, before any housekeeping
    assert registry["system_jobs"][ExpireProposalsJob] == {"interval": 60}
    assert expire_proposals() == 1
    stored = Proposal.objects.get(pk=proposal_id)
    assert (stored.status, stored.error) == ("expired", "The proposal expired before it was applied.")
    assert apply(owner, proposal_id).status_code == 409
