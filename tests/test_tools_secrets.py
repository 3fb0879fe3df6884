"""Secrets never leave the tools, and what an admin excludes looks like it does not exist.

Secret-bearing objects are created the way NetBox creates them (with change logging), then every
tool is asked for them as broadly as possible and the secret values must appear nowhere.
"""

import json
import uuid

import pytest
from core.models import DataSource, ObjectChange, ObjectType
from dcim.models import Device, Rack
from django.test import RequestFactory
from extras.models import ConfigContext, CustomField
from ipam.models import VLAN, FHRPGroup
from netbox.context_managers import event_tracking
from netbox.search.backends import search_backend
from users.models import Token
from vpn.models import IKEPolicy
from wireless.models import WirelessLAN

from tests.test_tools import admin, ams_user, call, nb, plugins_config  # noqa: F401 (fixtures)

SECRETS = (
    "wifi-psk-123",
    "fhrp-auth-key",
    "ike-preshared",
    "git-password",
    "snmp-community-string",
    "cf-api-token-value",
    "webhook-signing-secret",
    "rotated-signing-secret",
    "s3cr3t",
)


@pytest.fixture
def secrets(admin):
    request = RequestFactory().get("/")
    request.user, request.id = admin, uuid.uuid4()
    with event_tracking(request):
        objects = {
            "wireless.wirelesslan": WirelessLAN.objects.create(
                ssid="corp", auth_type="wpa-personal", auth_psk="wifi-psk-123"
            ),
            "ipam.fhrpgroup": FHRPGroup.objects.create(
                protocol="vrrp2", group_id=10, auth_type="plaintext", auth_key="fhrp-auth-key"
            ),
            "vpn.ikepolicy": IKEPolicy.objects.create(name="ike-main", version=2, preshared_key="ike-preshared"),
            "core.datasource": DataSource.objects.create(
                name="configs",
                type="git",
                source_url="https://git.example.net/configs.git",
                parameters={"username": "svc-netbox", "password": "git-password"},
            ),
            "extras.configcontext": ConfigContext.objects.create(
                name="snmp", weight=100, data={"snmp": {"community": "snmp-community-string", "location": "AMS"}}
            ),
        }
        field = CustomField.objects.create(name="api_token", type="text")
        field.object_types.add(ObjectType.objects.get_for_model(Device))
        device = Device.objects.get(name="ams1-leaf1")
        device.snapshot()
        device.custom_field_data["api_token"] = "cf-api-token-value"
        device.save()
    Token(user=admin, description="automation").save()
    for obj in objects.values():
        search_backend.cache(obj)
    return objects


def everything_said(user, secrets):
    """Ask every tool, as broadly as it allows, about the secret-bearing objects."""
    answers = []
    for label, obj in secrets.items():
        answers.append(call(user, "get_object", object_type=label, id=obj.pk))
        answers.append(
            call(
                user,
                "query_objects",
                object_type=label,
                fields=call(user, "describe_object_type", object_type=label)["fields"],
            )
        )
    device = Device.objects.get(name="ams1-leaf1")
    answers.append(call(user, "get_object", object_type="dcim.device", id=device.pk))
    answers.append(call(user, "get_object", object_type="dcim.device", id=device.pk, fields=["config_context"]))
    answers.append(
        call(
            user,
            "query_objects",
            object_type="extras.webhook",
            fields=call(user, "describe_object_type", object_type="extras.webhook")["fields"],
        )
    )
    answers.append(call(user, "get_changelog", since="1h", limit=50))
    answers.append(call(user, "get_changelog", since="1h", limit=50, offset=10))
    for secret in SECRETS:  # (the answer echoes the query, so only its results count)
        answers.append(call(user, "search", query=secret)["results"])
    return json.dumps(answers)


def test_secret_values_appear_in_no_answer(admin, secrets):
    device = Device.objects.get(name="ams1-leaf1")
    rendered = call(admin, "get_object", object_type="dcim.device", id=device.pk, fields=["config_context"])
    assert rendered["object"]["config_context"] == {"snmp": {"location": "AMS"}}
    assert "config_context" not in call(admin, "get_object", object_type="dcim.device", id=device.pk)["object"]
    said = everything_said(admin, secrets)
    for secret in SECRETS:
        assert secret not in said
    # The objects themselves were found and described, only their secrets are missing.
    assert "corp" in said and "ike-main" in said and "svc-netbox" in said and '"location": "AMS"' in said
    assert '"auth_type"' in said  # a field next to a secret is still there


@pytest.mark.parametrize(
    "object_type, secret_fields",
    [
        ("wireless.wirelesslan", ["auth_psk"]),
        ("ipam.fhrpgroup", ["auth_key"]),
        ("vpn.ikepolicy", ["preshared_key"]),
        ("extras.webhook", ["secret", "additional_headers"]),
        ("users.user", ["password"]),
    ],
)
def test_secret_fields_cannot_be_chosen_filtered_ordered_or_grouped(admin, object_type, secret_fields):
    described = call(admin, "describe_object_type", object_type=object_type)
    for name in secret_fields:
        assert name not in described["fields"] and name not in described["filters"]
        assert "unknown field(s)" in call(admin, "query_objects", object_type=object_type, fields=[name])["error"]
        assert "unknown filter" in call(admin, "query_objects", object_type=object_type, filters={name: "x"})["error"]
        assert (
            "unknown filter"
            in call(admin, "count_objects", object_type=object_type, filters={f"{name}__ic": "x"})["error"]
        )
        assert "is not a field" in call(admin, "query_objects", object_type=object_type, ordering=[name])["error"]
        assert "is not a field" in call(admin, "count_objects", object_type=object_type, group_by=name)["error"]


def test_users_are_readable_without_password_hashes(admin):
    user = call(admin, "get_object", object_type="users.user", id=admin.pk)["object"]
    assert user["username"] == "tools-admin" and "password" not in user
    assert "pbkdf2" not in json.dumps(call(admin, "get_changelog", object_type="users.user"))


def test_api_tokens_do_not_exist_for_the_tools(admin, secrets):
    unknown = call(admin, "query_objects", object_type="dcim.nothing")["error"].replace("dcim.nothing", "<type>")
    for label in (
        "users.token",
        "account.usertoken",
        "core.objectchange",
        "extras.cachedvalue",
        "netbox_chatbox.conversation",
    ):
        assert call(admin, "query_objects", object_type=label)["error"].replace(label, "<type>") == unknown
        assert call(admin, "get_object", object_type=label, id=1)["error"].replace(label, "<type>") == unknown
    listed = call(admin, "list_object_types")["object_types"]
    assert "token" not in listed["users"] and "objectchange" not in listed.get("core", [])
    assert "netbox_chatbox" not in listed


def test_excluded_models_look_nonexistent(admin):
    vlan_changes = ObjectChange.objects.filter(changed_object_type=ObjectType.objects.get_for_model(VLAN)).count()
    assert vlan_changes == 3
    with plugins_config(excluded_models=["dcim.rack", "ipam.vlan"]):
        unknown = call(admin, "count_objects", object_type="dcim.nothing")["error"].replace("dcim.nothing", "<type>")
        for tool, arguments in [
            ("query_objects", {}),
            ("count_objects", {}),
            ("describe_object_type", {}),
            ("get_object", {"id": Rack.objects.first().pk}),
            ("get_changelog", {}),
        ]:
            result = call(admin, tool, object_type="dcim.rack", **arguments)
            assert result["error"].replace("dcim.rack", "<type>") == unknown
        listed = call(admin, "list_object_types")["object_types"]
        assert "rack" not in listed["dcim"] and "vlan" not in listed["ipam"] and "device" in listed["dcim"]
        assert call(admin, "search", query="ams1-r1")["results"] == []
        assert call(admin, "search", query="storage", object_types=["dcim.rack"])["error"].startswith(
            "unknown object type"
        )
        assert call(admin, "get_changelog", since="1h")["count"] == ObjectChange.objects.count() - vlan_changes
        # Relations to an excluded type vanish too: no nested rack, no rack filter, no grouping by rack.
        device = call(admin, "describe_object_type", object_type="dcim.device")
        assert "rack" not in device["fields"] and "rack_id" not in device["filters"]
        assert (
            "unknown filter"
            in call(admin, "query_objects", object_type="dcim.device", filters={"rack_id": Rack.objects.first().pk})[
                "error"
            ]
        )
        assert "is not a field" in call(admin, "count_objects", object_type="dcim.device", group_by="rack")["error"]
        assert (
            "rack" not in call(admin, "get_object", object_type="dcim.device", id=Device.objects.first().pk)["object"]
        )
    assert "rack" in call(admin, "list_object_types")["object_types"]["dcim"]


def test_excluded_fields_are_never_returned_or_used(admin):
    request = RequestFactory().get("/")
    request.user, request.id = admin, uuid.uuid4()
    device = Device.objects.get(name="lon1-leaf1")
    with event_tracking(request):
        device.snapshot()
        device.serial = "NEW-SERIAL-1"
        device.save()
    search_backend.cache(device)
    with plugins_config(excluded_fields=["serial", "comments"]):
        obj = call(admin, "get_object", object_type="dcim.device", id=device.pk)["object"]
        assert "serial" not in obj and "comments" not in obj and obj["name"] == "lon1-leaf1"
        assert (
            "unknown filter"
            in call(admin, "query_objects", object_type="dcim.device", filters={"serial": "NEW-SERIAL-1"})["error"]
        )
        assert call(admin, "search", query="NEW-SERIAL-1")["results"] == []
        (change,) = call(admin, "get_changelog", object_type="dcim.device", object_id=device.pk)["changes"]
        assert change["changes"] == {}
    assert call(admin, "search", query="NEW-SERIAL-1")["results"][0]["display"] == "lon1-leaf1"
    (change,) = call(admin, "get_changelog", object_type="dcim.device", object_id=device.pk)["changes"]
    assert change["changes"]["serial"] == {"before": "SN-lon1-1", "after": "NEW-SERIAL-1"}
