"""Changes through the chat with netbox-branching (issue 13), against the real package and a really provisioned
branch: a chat in a branch (its cookie on the socket, its header on the HTTP API) reads and validates there, its
proposal says which branch and applies there (main untouched, the branch's own change log records it), and its
tool calls are read-only and time-bounded on the branch's connection too. Without a branch, main."""

import dataclasses
import uuid

import pytest
from asgiref.sync import sync_to_async
from core.models import ObjectChange
from dcim.models import Device, Site
from django.test import RequestFactory
from netbox.context_managers import event_tracking
from netbox_branching.models import Branch
from netbox_branching.utilities import activate_branch

from netbox_chatbox.agents.tooling import ToolScope
from netbox_chatbox.models import Proposal
from netbox_chatbox.preferences import PREFERENCE_PATH
from netbox_chatbox.tools import TOOLS, run_tool
from tests.conftest import grant
from tests.test_changes import ams_device_changer, apply, build
from tests.test_tools import plugins_config
from tests.test_tools_timeout import table_locked
from tests.test_transport_http import CHAT_URL, SSE, sse_events

from .chat_clients import open_socket

pytestmark = pytest.mark.django_db(transaction=True)  # provisioning and the tools' threads: committed data


@pytest.fixture
def world(chatbox_config):
    chatbox_config(enable_changes=True)
    world = build()
    ams_device_changer(world["owner"])
    grant(world["owner"], ObjectChange, ["view"])
    return world


@pytest.fixture
def branch(world):
    """A provisioned branch (a copy of main as the world built it) with one device that exists only there."""
    branch = Branch(name="Chat changes")
    branch.save(provision=False)
    branch.provision(user=None)
    branch.refresh_from_db()
    assert branch.ready, branch.status
    leaf = world["devices"]["ams1-leaf1"]
    request = RequestFactory().post("/")
    request.user, request.id = world["owner"], uuid.uuid4()
    with activate_branch(branch), event_tracking(request):  # change-logged: netbox-branching knows it was made here
        only_here = Device.objects.create(
            name="ams1-leaf9", site=leaf.site, device_type=leaf.device_type, role=leaf.role, status="planned"
        )
    assert not Device.objects.filter(pk=only_here.pk).exists()  # not in main
    yield branch, only_here
    branch.deprovision()  # the test database's flush empties main's tables only


def in_branch(branch, function, *args):
    with activate_branch(branch):
        return function(*args)


def _proposal(events):
    (event,) = [e for e in events if e["type"] == "proposal"]
    return event["proposal"]


def test_a_chat_in_a_branch_proposes_there_and_apply_writes_only_into_the_branch(api, world, branch, use_fake_ollama):
    branch, only_here = branch
    owner = world["owner"]
    owner.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    use_fake_ollama.tool_call("get_object", {"object_type": "dcim.device", "id": only_here.pk})
    use_fake_ollama.tool_call(
        "propose_update", {"object_type": "dcim.device", "id": only_here.pk, "data": {"status": "offline"}}
    )
    use_fake_ollama.reply("Proposed in your branch.")
    client = api(owner, token=True)
    # The REST API names the branch in netbox-branching's header, as for any API request.
    events = sse_events(
        client.post(
            CHAT_URL, {"message": "Take leaf9 offline"}, format="json", HTTP_X_NETBOX_BRANCH=branch.schema_id, **SSE
        )
    )
    assert events[-1]["type"] == "complete", events
    assert [e["ok"] for e in events if e["type"] == "tool_end"] == [True, True]  # read and validated in the branch
    card = _proposal(events)
    assert card["branch"] == "Chat changes"
    assert card["changes"][0]["changes"] == {"status": {"before": "planned", "after": "offline"}}
    proposal = Proposal.objects.get(pk=card["proposal_id"])

    response = apply(owner, proposal.pk)  # no branch on this request: the proposal's branch is where it applies
    assert response.status_code == 200, response.json().get("error")
    body = response.json()
    assert body["status"] == "applied" and body["branch"] == "Chat changes"
    assert not Device.objects.filter(pk=only_here.pk).exists()  # main: unchanged
    assert in_branch(branch, lambda: Device.objects.get(pk=only_here.pk).status) == "offline"
    change = in_branch(branch, lambda: ObjectChange.objects.get(changed_object_id=only_here.pk, action="update"))
    assert f"(proposal {proposal.pk}, /plugins/chatbox/?conversation={proposal.conversation_id})" in change.message
    assert change.user == owner
    assert not ObjectChange.objects.filter(changed_object_id=only_here.pk).exists()  # main's change log
    assert body["changelog_url"] == f"/core/changelog/?request_id={change.request_id}&_branch={branch.schema_id}"

    # A proposal whose branch was merged (or deleted) since is not applied, in the branch or anywhere else.
    with activate_branch(branch):
        card = run_tool(
            "propose_update", {"object_type": "dcim.device", "id": only_here.pk, "data": {"serial": "X"}}, owner
        )
    Branch.objects.filter(pk=branch.pk).update(status="merged")
    response = apply(owner, card["proposal_id"])
    assert response.status_code == 409
    assert response.json()["error"] == "branch Chat changes is not ready for use (status: merged); nothing was applied."
    assert Proposal.objects.get(pk=card["proposal_id"]).status == "pending"


async def test_the_socket_works_in_the_branch_its_cookie_names_and_in_main_without(
    api, world, branch, use_fake_anthropic
):
    branch, only_here = branch
    owner = world["owner"]
    await sync_to_async(owner.config.set)(PREFERENCE_PATH, "claude-haiku-4-5", commit=True)
    use_fake_anthropic.tool_call(
        "mcp__netbox__propose_update", {"object_type": "dcim.device", "id": only_here.pk, "data": {"serial": "SN-9"}}
    )
    use_fake_anthropic.reply("Proposed in your branch.")
    socket, _ = await open_socket(owner, cookies=f"active_branch={branch.schema_id}")
    await socket.event()  # session
    events = await socket.chat("Set the serial of leaf9 to SN-9")
    await socket.close()
    assert events[-1]["type"] == "complete", events
    card = _proposal(events)  # validated in the branch: leaf9 does not exist in main
    assert card["branch"] == "Chat changes"
    assert card["changes"][0]["changes"] == {"serial": {"before": "", "after": "SN-9"}}

    # Without the cookie: main, where leaf9 does not exist; a proposal there applies in main, even when the
    # Apply comes from a page with the branch active.
    device = world["devices"]["ams1-leaf2"]
    use_fake_anthropic.tool_call("mcp__netbox__get_object", {"object_type": "dcim.device", "id": only_here.pk})
    use_fake_anthropic.tool_call(
        "mcp__netbox__propose_update", {"object_type": "dcim.device", "id": device.pk, "data": {"status": "offline"}}
    )
    use_fake_anthropic.reply("Proposed.")
    socket, _ = await open_socket(owner)
    await socket.event()  # session
    events = await socket.chat("Take leaf2 offline")
    await socket.close()
    assert [e["ok"] for e in events if e["type"] == "tool_end"] == [False, True]  # leaf9: not in main
    card = _proposal(events)
    assert "branch" not in card
    client = await sync_to_async(api)(owner, token=True)
    response = await sync_to_async(client.post)(
        f"/api/plugins/chatbox/proposals/{card['proposal_id']}/apply/", HTTP_X_NETBOX_BRANCH=branch.schema_id
    )
    assert response.status_code == 200, response.json().get("error")
    assert (await Device.objects.aget(pk=device.pk)).status == "offline"
    assert await sync_to_async(in_branch)(branch, lambda: Device.objects.get(pk=device.pk).status) == "active"

    # A script's socket names a branch in netbox-branching's header; one that is not there is refused.
    refused, code = await open_socket(owner, headers=[(b"x-netbox-branch", b"nosuchbr")])
    assert refused is None and code == 1000


def test_tool_calls_in_a_branch_are_read_only_and_time_bounded(superuser, branch, monkeypatch):
    branch, only_here = branch

    def write_in_branch(user, **arguments):
        Site.objects.create(name="Written by a tool", slug="written")  # routed to the branch's schema
        return {}

    tool = TOOLS["count_objects"]
    monkeypatch.setitem(TOOLS, "count_objects", dataclasses.replace(tool, handler=write_in_branch))
    scope = ToolScope(superuser)
    scope.branch = branch
    assert "error" in scope.run("count_objects", {"object_type": "dcim.site"})
    assert not in_branch(branch, lambda: Site.objects.filter(slug="written").exists())
    monkeypatch.setitem(TOOLS, "count_objects", tool)

    with table_locked(f'"{branch.schema_name}".circuits_provider'), plugins_config(tool_statement_timeout_ms=200):
        result = scope.run("count_objects", {"object_type": "circuits.provider"})
    assert result == {
        "error": "the query took longer than 200 ms and was cancelled; narrow it with filters or a smaller limit"
    }
    assert scope.run("count_objects", {"object_type": "dcim.device"}) == {"object_type": "dcim.device", "count": 4}
