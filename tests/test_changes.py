"""Changes through the chat (issue 13): proposal tools validate as NetBox's REST API would and store a
Proposal without writing; the owner applies it through the API with their own permissions, all or
nothing, once, through NetBox's change log. Real NetBox, PostgreSQL and ObjectPermissions."""

import threading
import uuid
from datetime import timedelta

import pytest
from core.models import ObjectChange
from dcim.models import Device, DeviceRole, DeviceType, Manufacturer, Site
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.middleware.csrf import _get_new_csrf_string
from django.test import RequestFactory, override_settings
from django.utils import timezone
from netbox.context import events_queue
from netbox.context_managers import event_tracking
from rest_framework.test import APIClient

from netbox_chatbox.agents.tooling import tool_end, tool_start
from netbox_chatbox.mcp_server import tool_definitions
from netbox_chatbox.models import Conversation, Proposal
from netbox_chatbox.tools import TOOLS, enabled_tools, run_tool
from tests.conftest import grant, token_for
from tests.test_tools import plugins_config

PROPOSAL_TOOLS = {"propose_create", "propose_update", "propose_delete", "propose_changes"}


def changes_on(**values):
    return plugins_config(enable_changes=True, **values)


def build():
    User = get_user_model()
    owner = User.objects.create_user("changer", password="x" * 12)
    sites = {slug: Site.objects.create(name=slug.upper(), slug=slug, status="active") for slug in ("ams1", "fra1")}
    vendor = Manufacturer.objects.create(name="Juniper", slug="juniper")
    dtype = DeviceType.objects.create(manufacturer=vendor, model="QFX", slug="qfx")
    role = DeviceRole.objects.create(name="Leaf", slug="leaf")
    devices = {
        name: Device.objects.create(name=name, site=sites[name[:4]], device_type=dtype, role=role)
        for name in ("ams1-leaf1", "ams1-leaf2", "fra1-leaf1")
    }
    grant(owner, Conversation, ["chat"])
    return {"owner": owner, "sites": sites, "devices": devices}


@pytest.fixture
def nb(db):
    return build()


def propose(user, name, **arguments):
    return run_tool(name, arguments, user)


def apply(user, proposal_id, write_enabled=True):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=token_for(user, write_enabled))
    return client.post(f"/api/plugins/chatbox/proposals/{proposal_id}/apply/", format="json")


def ams_device_changer(user):
    """May view and change devices, but only those at AMS1."""
    grant(user, Site, ["view"])
    return grant(user, Device, ["view", "change"], {"site__slug": "ams1"})


# ------------------------------------------------------------------------------------------------
# The opt-in


def test_changes_are_off_by_default_tools_absent_and_apply_refused(nb):
    owner, device = nb["owner"], nb["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    assert PROPOSAL_TOOLS <= set(TOOLS) and not PROPOSAL_TOOLS & set(enabled_tools())
    assert (
        "unknown tool 'propose_update'"
        in propose(owner, "propose_update", object_type="dcim.device", id=device.pk, data={"name": "x"})["error"]
    )
    with changes_on():
        assert PROPOSAL_TOOLS <= set(enabled_tools())
        proposal_id = propose(
            owner, "propose_update", object_type="dcim.device", id=device.pk, data={"name": "ams1-leaf1-new"}
        )["proposal_id"]
    response = apply(owner, proposal_id)
    assert response.status_code == 403 and "disabled" in response.json()["detail"]
    device.refresh_from_db()
    assert device.name == "ams1-leaf1"


def test_when_on_agents_and_mcp_clients_are_offered_the_proposal_tools_marked_as_not_read_only(nb):
    owner, device = nb["owner"], nb["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    with changes_on():
        hints = {tool.name: tool.annotations.read_only_hint for tool in tool_definitions()}
        arguments = {"object_type": "dcim.device", "id": device.pk, "data": {"name": "ams1-core1"}}
        result = propose(owner, "propose_update", **arguments)
    assert {name: hints[name] for name in PROPOSAL_TOOLS} == dict.fromkeys(PROPOSAL_TOOLS, False)
    assert hints["query_objects"] is True
    assert tool_start("c1", "propose_update", arguments).summary == f"proposing to update dcim.device #{device.pk}"
    end = tool_end("c1", "propose_update", result)
    assert end.ok and end.summary == "proposed 1 change for your review"


# ------------------------------------------------------------------------------------------------
# Proposing: validated like a REST API write, nothing applied


def test_a_proposal_is_validated_and_stored_but_nothing_is_written(nb):
    owner, device = nb["owner"], nb["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    changes_before = ObjectChange.objects.count()
    with changes_on():
        result = propose(
            owner,
            "propose_update",
            object_type="dcim.device",
            id=device.pk,
            data={"name": "ams1-core1", "status": "offline"},
            summary="rename the first leaf",
        )
    assert result["status"] == "pending" and result["count"] == 1 and result["summary"] == "rename the first leaf"
    (change,) = result["changes"]
    assert change["action"] == "update" and change["id"] == device.pk
    assert change["changes"] == {
        "name": {"before": "ams1-leaf1", "after": "ams1-core1"},
        "status": {"before": "active", "after": "offline"},
    }
    assert result["apply_url"] == f"/api/plugins/chatbox/proposals/{result['proposal_id']}/apply/"
    device.refresh_from_db()
    assert (device.name, device.status) == ("ams1-leaf1", "active")
    assert ObjectChange.objects.count() == changes_before
    stored = Proposal.objects.get(pk=result["proposal_id"])
    assert stored.owner == owner and stored.status == "pending" and stored.expires > timezone.now()


def test_proposing_during_a_request_writes_no_change_log_and_queues_no_event(nb):
    """The chat's HTTP API runs tools inside NetBox's request context; the rolled-back write must not
    leave change log rows or webhooks behind."""
    owner, device = nb["owner"], nb["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    request = RequestFactory().post("/api/plugins/chatbox/chat/")
    request.user, request.id = owner, uuid.uuid4()
    with changes_on(), event_tracking(request):
        result = propose(owner, "propose_update", object_type="dcim.device", id=device.pk, data={"name": "x1"})
        queued = dict(events_queue.get())
    assert result["status"] == "pending" and queued == {}
    assert not ObjectChange.objects.filter(request_id=request.id).exists()


def test_invalid_data_comes_back_as_errors_the_model_can_correct(nb):
    owner = get_user_model().objects.create_user("root", password="x" * 12, is_superuser=True)
    with changes_on():
        missing = propose(owner, "propose_create", object_type="dcim.site", data={"name": "Lisbon"})
        bad_choice = propose(
            owner, "propose_update", object_type="dcim.site", id=nb["sites"]["ams1"].pk, data={"status": "on-fire"}
        )
        duplicate = propose(owner, "propose_create", object_type="dcim.site", data={"name": "AMS1", "slug": "ams1"})
        unknown = propose(owner, "propose_delete", object_type="dcim.nothing", id=1)
        created = propose(owner, "propose_create", object_type="dcim.site", data={"name": "Lisbon", "slug": "lis1"})
    assert missing["error"] == "operation 1 (create dcim.site): slug: This field is required."
    assert (
        bad_choice["error"].startswith("operation 1 (update dcim.site #")
        and "status" in bad_choice["error"]
        and "on-fire" in bad_choice["error"]
    )
    assert "name" in duplicate["error"] and "exists" in duplicate["error"]
    assert unknown["error"].startswith("unknown object type 'dcim.nothing'")
    assert created["changes"][0]["changes"]["slug"] == {"before": None, "after": "lis1"}
    assert not Site.objects.filter(slug="lis1").exists()
    assert Proposal.objects.count() == 1


def test_without_permission_a_proposal_is_refused_with_the_reason(nb):
    owner, device = nb["owner"], nb["devices"]["ams1-leaf1"]
    grant(owner, Device, ["view"])
    with changes_on():
        update = propose(owner, "propose_update", object_type="dcim.device", id=device.pk, data={"name": "x"})
        create = propose(owner, "propose_create", object_type="dcim.site", data={"name": "X", "slug": "x"})
    assert update["error"] == (
        f"operation 1 (update dcim.device #{device.pk}): you have no permission to update dcim.device objects in NetBox"
    )
    assert create["error"].endswith("you have no permission to create dcim.site objects in NetBox")
    assert not Proposal.objects.exists()


def test_objects_the_user_may_not_view_or_change_read_as_missing_or_refused(nb):
    owner = nb["owner"]
    ams_device_changer(owner)
    fra = nb["devices"]["fra1-leaf1"]
    with changes_on():
        hidden = propose(owner, "propose_update", object_type="dcim.device", id=fra.pk, data={"name": "x"})
        nowhere = propose(owner, "propose_update", object_type="dcim.device", id=10**9, data={"name": "x"})
        moved_out = propose(
            owner,
            "propose_update",
            object_type="dcim.device",
            id=nb["devices"]["ams1-leaf1"].pk,
            data={"site": nb["sites"]["fra1"].pk},
        )
        hidden_role = propose(
            owner,
            "propose_update",
            object_type="dcim.device",  # no view permission on roles
            id=nb["devices"]["ams1-leaf1"].pk,
            data={"role": {"slug": "leaf"}},
        )
    assert hidden["error"] == (
        f"operation 1 (update dcim.device #{fra.pk}): no dcim.device with id {fra.pk} (deleted, or not visible to you)"
    )
    assert nowhere["error"].endswith(f"no dcim.device with id {10**9} (deleted, or not visible to you)")
    assert moved_out["error"].endswith("the result would be outside what your permissions allow you to update")
    assert "role: Related object not found using the provided attributes: {'slug': 'leaf'}" in hidden_role["error"]
    assert not Proposal.objects.exists()


def test_secret_fields_bulk_cap_and_malformed_operations_are_refused(nb):
    owner = get_user_model().objects.create_user("root", password="x" * 12, is_superuser=True)
    device = nb["devices"]["ams1-leaf1"]
    ops = [
        {"action": "update", "object_type": "dcim.device", "id": device.pk, "data": {"serial": str(n)}}
        for n in range(3)
    ]
    with changes_on(max_bulk_operations=2):
        over_cap = propose(owner, "propose_changes", operations=ops)
        secret = propose(
            owner, "propose_create", object_type="wireless.wirelesslan", data={"ssid": "guest", "auth_psk": "hunter22"}
        )
        no_id = propose(owner, "propose_changes", operations=[{"action": "delete", "object_type": "dcim.device"}])
    assert over_cap["error"] == "3 operations exceed the limit of 2 per proposal; split them"
    assert secret["error"] == (
        "operation 1 (create wireless.wirelesslan): 'auth_psk' is a secret field; set it in "
        "NetBox itself, not through the chat"
    )
    assert no_id["error"] == "operation 1: delete needs the object's id"
    assert not Proposal.objects.exists()


# ------------------------------------------------------------------------------------------------
# Applying


def test_apply_writes_all_operations_once_through_the_change_log(nb):
    owner, devices = nb["owner"], nb["devices"]
    ams_device_changer(owner)
    grant(owner, Device, ["delete"], {"site__slug": "ams1"})
    conversation = Conversation.objects.create(owner=owner, model_id="auto", path="a")
    with changes_on():
        proposed = run_tool(
            "propose_changes",
            {
                "operations": [
                    {
                        "action": "update",
                        "object_type": "dcim.device",
                        "id": devices["ams1-leaf1"].pk,
                        "data": {"name": "ams1-core1"},
                    },
                    {"action": "delete", "object_type": "dcim.device", "id": devices["ams1-leaf2"].pk},
                ],
                "summary": "replace leaf2 by core1",
            },
            owner,
            conversation=conversation,
        )
        response = apply(owner, proposed["proposal_id"])
        again = apply(owner, proposed["proposal_id"])
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "applied"
    assert Device.objects.get(pk=devices["ams1-leaf1"].pk).name == "ams1-core1"
    assert not Device.objects.filter(pk=devices["ams1-leaf2"].pk).exists()
    changes = ObjectChange.objects.filter(changed_object_type__model="device").order_by("pk")
    assert [c.action for c in changes] == ["update", "delete"]
    assert {c.user for c in changes} == {owner} and len({c.request_id for c in changes}) == 1
    for change in changes:
        assert change.message == (
            f"Applied from the chat assistant: replace leaf2 by core1 (proposal "
            f"{proposed['proposal_id']}, /plugins/chatbox/?conversation={conversation.pk})"
        )
    assert again.status_code == 409 and again.json()["error"] == "This proposal is applied; nothing was applied."
    assert ObjectChange.objects.filter(changed_object_type__model="device").count() == 2


def test_apply_needs_the_owner_and_a_write_enabled_token_or_csrf(nb):
    owner, device = nb["owner"], nb["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    other = get_user_model().objects.create_user("mallory", password="x" * 12, is_superuser=True)
    with changes_on():
        proposal_id = propose(
            owner, "propose_update", object_type="dcim.device", id=device.pk, data={"name": "ams1-core1"}
        )["proposal_id"]
        assert apply(other, proposal_id).status_code == 404
        read_only = apply(owner, proposal_id, write_enabled=False)
        session = APIClient(enforce_csrf_checks=True)
        session.force_login(owner)
        url = f"/api/plugins/chatbox/proposals/{proposal_id}/apply/"
        without_csrf = session.post(url)
        device.refresh_from_db()
        assert device.name == "ams1-leaf1"
        csrf = _get_new_csrf_string()
        session.cookies["csrftoken"] = csrf
        with_csrf = session.post(url, HTTP_X_CSRFTOKEN=csrf)
    assert read_only.status_code == 403 and "read-only" in read_only.json()["detail"]
    assert without_csrf.status_code == 403
    assert with_csrf.status_code == 200, with_csrf.json()
    device.refresh_from_db()
    assert device.name == "ams1-core1"
    listed = APIClient()
    listed.credentials(HTTP_AUTHORIZATION=token_for(other))
    assert listed.get("/api/plugins/chatbox/proposals/").json()["count"] == 0
    listed.credentials(HTTP_AUTHORIZATION=token_for(owner))
    assert [p["proposal_id"] for p in listed.get("/api/plugins/chatbox/proposals/").json()["results"]] == [proposal_id]


FLUSHED = []


def record_events(events):
    """An EVENTS_PIPELINE step (NetBox's extension point, next to its event-rule processor): what a request
    hands to event rules and webhooks."""
    FLUSHED.extend(
        (e["object_type"].model, e["object_id"], e["event_type"], e["user"].username, e["request"].id) for e in events
    )


def test_event_rules_receive_an_applied_change_and_nothing_from_a_refused_one(nb):
    owner, devices = nb["owner"], nb["devices"]
    permission = ams_device_changer(owner)
    FLUSHED.clear()
    pipeline = [*settings.EVENTS_PIPELINE, "tests.test_changes.record_events"]
    with changes_on(), override_settings(EVENTS_PIPELINE=pipeline):
        proposals = [
            propose(owner, "propose_update", object_type="dcim.device", id=devices[name].pk, data={"serial": "EV1"})[
                "proposal_id"
            ]
            for name in ("ams1-leaf1", "ams1-leaf2")
        ]
        assert FLUSHED == []  # proposing queues no event
        assert apply(owner, proposals[0]).status_code == 200
        change = ObjectChange.objects.get(changed_object_id=devices["ams1-leaf1"].pk)
        assert FLUSHED == [("device", devices["ams1-leaf1"].pk, "object_updated", "changer", change.request_id)]
        permission.constraints = {"serial": ""}  # the device may be changed, but not to what was proposed
        permission.save()
        refused = apply(owner, proposals[1])
        assert refused.status_code == 400 and "outside what your permissions allow" in refused.json()["error"]
    assert len(FLUSHED) == 1


def test_a_constraint_tightened_since_the_proposal_refuses_apply_and_saves_nothing(nb):
    owner, devices = nb["owner"], nb["devices"]
    permission = ams_device_changer(owner)
    permission.constraints = None  # for now: every device
    permission.save()
    with changes_on():
        proposal_id = propose(
            owner,
            "propose_changes",
            operations=[
                {
                    "action": "update",
                    "object_type": "dcim.device",
                    "id": devices["fra1-leaf1"].pk,
                    "data": {"serial": "S1"},
                },
                {
                    "action": "update",
                    "object_type": "dcim.device",
                    "id": devices["ams1-leaf1"].pk,
                    "data": {"site": nb["sites"]["fra1"].pk},
                },
            ],
        )["proposal_id"]
        permission.constraints = [{"site__slug": "ams1"}, {"name": "fra1-leaf1"}]  # operation 1 stays allowed
        permission.save()
        response = apply(owner, proposal_id)
    assert response.status_code == 400
    assert response.json()["error"].startswith("operation 2 (update dcim.device #")
    assert response.json()["status"] == "failed"
    assert Device.objects.get(pk=devices["fra1-leaf1"].pk).serial == ""  # operation 1 rolled back too
    assert Device.objects.get(pk=devices["ams1-leaf1"].pk).site.slug == "ams1"
    assert not ObjectChange.objects.filter(changed_object_type__model="device").exists()


def test_an_object_changed_since_the_proposal_is_refused_with_the_fresh_diff(nb):
    owner, device = nb["owner"], nb["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    with changes_on():
        proposal_id = propose(
            owner, "propose_update", object_type="dcim.device", id=device.pk, data={"status": "offline"}
        )["proposal_id"]
        Device.objects.filter(pk=device.pk).update(name="renamed-meanwhile")
        stale = apply(owner, proposal_id)
        device.refresh_from_db()
        assert (device.name, device.status) == ("renamed-meanwhile", "active")
        fresh = apply(owner, proposal_id)  # the user reviewed the fresh diff and applies again
    assert stale.status_code == 409 and stale.json()["status"] == "pending"
    assert stale.json()["error"].startswith("changed in NetBox since the proposal: operation 1 (update dcim.device #")
    assert stale.json()["changes"][0]["display"] == "renamed-meanwhile"
    assert stale.json()["changes"][0]["changes"] == {"status": {"before": "active", "after": "offline"}}
    assert fresh.status_code == 200
    device.refresh_from_db()
    assert (device.name, device.status) == ("renamed-meanwhile", "offline")


def test_expired_discarded_and_deleted_since_give_clear_errors(nb):
    owner, devices = nb["owner"], nb["devices"]
    ams_device_changer(owner)
    with changes_on():
        ids = [
            propose(owner, "propose_update", object_type="dcim.device", id=devices[name].pk, data={"serial": "NEW"})[
                "proposal_id"
            ]
            for name in ("ams1-leaf1", "ams1-leaf1", "ams1-leaf2")
        ]
        Proposal.objects.filter(pk=ids[0]).update(expires=timezone.now() - timedelta(seconds=1))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=token_for(owner))
        assert client.get(f"/api/plugins/chatbox/proposals/{ids[0]}/").json()["status"] == "expired"
        expired = apply(owner, ids[0])
        discarded = client.post(f"/api/plugins/chatbox/proposals/{ids[1]}/discard/")
        after_discard = apply(owner, ids[1])
        devices["ams1-leaf2"].delete()
        gone = apply(owner, ids[2])
    assert expired.status_code == 409 and expired.json()["status"] == "expired"
    assert discarded.status_code == 200 and discarded.json()["status"] == "discarded"
    assert after_discard.status_code == 409 and after_discard.json()["error"].startswith("This proposal is discarded")
    assert gone.status_code == 400 and gone.json()["error"].endswith("(deleted, or not visible to you)")
    assert Device.objects.get(pk=devices["ams1-leaf1"].pk).serial == ""


def test_the_api_schema_documents_the_proposal_endpoints(api_schema):
    paths = api_schema["paths"]
    assert {
        "/api/plugins/chatbox/proposals/",
        "/api/plugins/chatbox/proposals/{id}/apply/",
        "/api/plugins/chatbox/proposals/{id}/discard/",
    } <= set(paths)
    assert (
        paths["/api/plugins/chatbox/proposals/{id}/apply/"]["post"]["operationId"] == "plugins_chatbox_proposals_apply"
    )


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_applies_apply_once():
    data = build()
    owner, device = data["owner"], data["devices"]["ams1-leaf1"]
    ams_device_changer(owner)
    with changes_on():
        proposal_id = propose(
            owner, "propose_update", object_type="dcim.device", id=device.pk, data={"name": "ams1-core1"}
        )["proposal_id"]
        tokens = [token_for(owner), token_for(owner)]
        start, statuses = threading.Barrier(2), []

        def click(token):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=token)
            start.wait()
            try:
                statuses.append(client.post(f"/api/plugins/chatbox/proposals/{proposal_id}/apply/").status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=click, args=(t,)) for t in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(statuses) == [200, 409]
    assert ObjectChange.objects.filter(changed_object_type__model="device", action="update").count() == 1
