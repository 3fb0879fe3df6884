"""Grounding: an answer's NetBox names and values are checked against the tool results of its conversation.

Unit checks of the mention finder, then whole turns through the chat API (path B against the scripted fake
Ollama, real tools on real NetBox data): a made-up device is flagged, a faithful answer is not, the marks
survive a reload through the conversations API, and ``grounding_mode = "withhold"`` replaces the answer.
"""

import pytest
from dcim.models import Device, DeviceRole, DeviceType, Manufacturer, Site
from ipam.models import IPAddress, Prefix

from netbox_chatbox.grounding import Known, facts, mentions
from netbox_chatbox.models import Message
from netbox_chatbox.preferences import PREFERENCE_PATH
from tests.conftest import grant

CHAT_URL = "/api/plugins/chatbox/chat/"


def flagged(text, results=(), user=()):
    return [m["text"] for m in mentions(text, Known([facts(r) for r in results], list(user)))]


DEVICES = {
    "count": 2,
    "results": [
        {
            "id": 1,
            "display": "core-sw1",
            "url": "/dcim/devices/1/",
            "site": {"display": "AMS1"},
            "primary_ip4": {"display": "10.1.2.1/24"},
        },
        {"id": 2, "display": "edge-rtr2", "url": "/dcim/devices/2/", "status": "active"},
    ],
}
FREE = {
    "object": {"display": "10.1.2.0/24", "url": "/ipam/prefixes/4/"},
    "utilization_percent": 83.6,
    "available_ranges": [{"first": "10.1.2.10", "last": "10.1.2.99", "size": 90}],
    "in_use": {"count": 3},
}
VLANS = {"available_ranges": [{"first": 102, "last": 149, "size": 48}], "in_use": {"results": [{"vid": 100}]}}


@pytest.mark.django_db
def test_made_up_names_and_values_are_flagged():
    text = (
        "I found **core-sw1** and phantom-rtr9 at [AMS1](/dcim/sites/9/). core-sw1 uses 10.1.2.1; "
        "10.66.0.1 is free, like VLAN 120 and AS64999. There are 7 devices."
    )
    assert flagged(text, [DEVICES, VLANS]) == ["/dcim/sites/9/", "10.66.0.1", "AS64999", "7 devices", "phantom-rtr9"]


@pytest.mark.django_db
def test_faithful_answers_raise_no_false_alarms():
    text = (
        "There are 2 devices: [core-sw1](/dcim/devices/1/) (primary IP 10.1.2.1/24) and `edge-rtr2`, both at "
        "AMS1. 10.1.2.0/24 is about 84 % used; 10.1.2.42 is free (the free range is 10.1.2.10–10.1.2.99, "
        "90 addresses). VLAN 120 is free. Answered by Claude Haiku 4.5 (claude-haiku-4-5) on 2026-11-29 "
        "with IPv6 off, a 10G uplink, 2U of space, /24 blocks, 802.1Q, read-only access, e.g. dcim.device."
    )
    assert flagged(text, [DEVICES, FREE, VLANS]) == []


@pytest.mark.django_db
def test_what_the_user_typed_is_not_flagged():
    text = "No device named edge-rtr7 exists, so none of its 48 ports can be free."
    assert flagged(text, [{"count": 0, "results": []}]) == ["48 ports", "edge-rtr7"]
    assert flagged(text, [{"count": 0, "results": []}], ["Does edge-rtr7 have 48 ports free?"]) == []


@pytest.fixture
def netbox_data(chat_user):
    site = Site.objects.create(name="AMS1", slug="ams1")
    maker = Manufacturer.objects.create(name="Juniper", slug="juniper")
    kind = DeviceType.objects.create(manufacturer=maker, model="QFX5120", slug="qfx5120")
    role = DeviceRole.objects.create(name="Core", slug="core")
    Device.objects.create(name="core-sw1", site=site, device_type=kind, role=role)
    Prefix.objects.create(prefix="10.1.2.0/24", status="active")
    IPAddress.objects.create(address="10.1.2.1/24", status="active")
    for model in (Device, Site, Prefix, IPAddress):
        grant(chat_user, model, ["view"], name=f"ground-{model.__name__}")
    chat_user.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)


def turn(api, user, fake, question, answer, call, conversation=None):
    fake.tool_call(*call)
    fake.reply(answer)
    body = {"message": question, **({"conversation": conversation} if conversation else {})}
    response = api(user, token=True).post(CHAT_URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_a_made_up_device_is_flagged_and_the_marks_survive_a_reload(api, chat_user, use_fake_ollama, netbox_data):
    faithful = turn(
        api,
        chat_user,
        use_fake_ollama,
        "Which devices are at AMS1?",
        "AMS1 has 1 device: core-sw1.",
        ("query_objects", {"object_type": "dcim.device"}),
    )
    assert faithful["events"][-1]["grounding"] == {"ungrounded": [], "withheld": False}
    made_up = turn(
        api,
        chat_user,
        use_fake_ollama,
        "And its neighbours?",
        "core-sw1 connects to phantom-rtr9 at 10.1.2.77, next free IP 10.1.2.2.",
        ("available_ips", {"prefix": "10.1.2.0/24"}),
        conversation=faithful["conversation"],
    )
    complete = made_up["events"][-1]
    assert complete["grounding"] == {"withheld": False, "ungrounded": [{"text": "phantom-rtr9", "kind": "name"}]}
    assert made_up["answer"] == "core-sw1 connects to phantom-rtr9 at 10.1.2.77, next free IP 10.1.2.2."
    # After a reload: the conversations API returns the marks with each answer (not the facts behind them).
    stored = api(chat_user).get(f"/api/plugins/chatbox/conversations/{faithful['conversation']}/").json()
    answers = [m for m in stored["messages"] if m["role"] == "assistant"]
    assert [a["grounding"] for a in answers] == [
        {"ungrounded": [], "withheld": False},
        {"ungrounded": [{"text": "phantom-rtr9", "kind": "name"}], "withheld": False},
    ]
    assert answers[1]["tool_calls"][0]["objects"][0]["display"] == "10.1.2.0/24"  # the sources, as links
    assert "facts" in Message.objects.get(pk=complete["message"]).grounding


@pytest.mark.django_db(transaction=True)
def test_withhold_replaces_an_ungrounded_answer(api, chat_user, use_fake_ollama, chatbox_config, netbox_data):
    chatbox_config(grounding_mode="withhold")
    result = turn(
        api,
        chat_user,
        use_fake_ollama,
        "Which devices are at AMS1?",
        "AMS1 has core-sw1 and phantom-rtr9.",
        ("query_objects", {"object_type": "dcim.device"}),
    )
    complete = result["events"][-1]
    assert complete["grounding"]["withheld"] is True
    assert result["answer"] == complete["content"]
    assert result["answer"].startswith("This answer was withheld") and "phantom-rtr9" in result["answer"]
    message = Message.objects.get(pk=complete["message"])
    assert message.content == result["answer"] and "core-sw1 and" not in message.content
    faithful = turn(
        api,
        chat_user,
        use_fake_ollama,
        "Which devices are at AMS1?",
        "AMS1 has core-sw1.",
        ("query_objects", {"object_type": "dcim.device"}),
    )
    assert faithful["answer"] == "AMS1 has core-sw1." and "content" not in faithful["events"][-1]


@pytest.mark.django_db(transaction=True)
def test_grounding_off_checks_nothing(api, chat_user, use_fake_ollama, chatbox_config, netbox_data):
    chatbox_config(grounding_mode="off")
    result = turn(
        api, chat_user, use_fake_ollama, "Devices?", "phantom-rtr9.", ("query_objects", {"object_type": "dcim.device"})
    )
    assert "grounding" not in result["events"][-1]
    assert Message.objects.get(pk=result["events"][-1]["message"]).grounding is None


@pytest.mark.django_db(transaction=True)
def test_path_a_answers_are_checked_too(api, chat_user, use_fake_anthropic, netbox_data):
    chat_user.config.set(PREFERENCE_PATH, "claude-haiku-4-5", commit=True)
    use_fake_anthropic.tool_call("mcp__netbox__available_ips", {"prefix": "10.1.2.0/24"}, id="toolu_free")
    use_fake_anthropic.reply("The next free IP in 10.1.2.0/24 is 10.1.2.2; 10.1.2.1 belongs to ghost-fw3.")
    response = api(chat_user, token=True).post(CHAT_URL, {"message": "Next free IP in 10.1.2.0/24?"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["events"][-1]["grounding"] == {
        "ungrounded": [{"text": "ghost-fw3", "kind": "name"}],
        "withheld": False,
    }


@pytest.mark.django_db
def test_general_vocabulary_is_not_data():
    text = (
        "Both IPv4/IPv6 work over 10GbE and 100GBASE-LR4 optics on the 24-port switch; HTTP/2 and TCP/IP, "
        "Python 3.12, the 2nd uplink, 4x 25G, at 14:00 UTC, x86_64, Layer-3, RFC1918, N/A."
    )
    assert flagged(text) == []


@pytest.mark.django_db
def test_short_site_and_rack_names_are_checked():
    assert flagged("Site ams1 has rack r7 and fra9.", [{"results": [{"display": "AMS1"}]}]) == ["fra9"]


def test_a_bad_grounding_mode_is_reported_and_falls_back_to_flag():
    from netbox_chatbox.conf import validate

    values, errors = validate({"grounding_mode": "maybe"})
    assert values["grounding_mode"] == "flag"
    assert errors == ["'grounding_mode' must be one of flag, withhold, off, not 'maybe'"]
