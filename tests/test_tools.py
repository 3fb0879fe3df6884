"""The NetBox data tools on realistic data: results match the ORM, bad input is a clear error,
results stay within the caps, and each call costs a bounded number of SQL queries.

The data (sites, racks, devices, interfaces, prefixes, IPs, VLANs, change log) is built once per
module inside a transaction that is rolled back at the end; permissions are real ObjectPermissions.
"""

import json
import uuid

import pytest
from circuits.models import Circuit, CircuitTermination, CircuitType, Provider
from core.models import ObjectChange
from dcim.choices import DeviceStatusChoices
from dcim.models import (
    Cable,
    Device,
    DeviceRole,
    DeviceType,
    FrontPort,
    Interface,
    Manufacturer,
    Rack,
    Site,
    VirtualChassis,
)
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from extras.models import Tag, Webhook
from ipam.models import VLAN, IPAddress, Prefix
from netbox.context_managers import event_tracking
from netbox.registry import registry
from netbox.search.backends import search_backend
from tenancy.models import Tenant

from netbox_chatbox.tools import TOOLS, enabled_tools, result_objects, run_tool
from netbox_chatbox.tools.types import object_types
from tests.conftest import grant

# One worker (pytest-xdist) runs this module: its tests share the data of the ``nb`` fixture.
pytestmark = pytest.mark.xdist_group("tools-data")

SITES = {"ams1": 6, "fra1": 5, "lon1": 4}


def call(user, name, **arguments):
    return run_tool(name, arguments, user)


def plugins_config(**values):
    """PLUGINS_CONFIG with some chatbox settings changed (conf.get_settings re-reads it)."""
    from django.conf import settings

    return override_settings(
        PLUGINS_CONFIG={
            **settings.PLUGINS_CONFIG,
            "netbox_chatbox": {**settings.PLUGINS_CONFIG["netbox_chatbox"], **values},
        }
    )


def _build():
    User = get_user_model()
    admin = User.objects.create_user("tools-admin", password="x" * 12, is_superuser=True)
    ams_user = User.objects.create_user("tools-ams", password="x" * 12)
    nobody = User.objects.create_user("tools-nobody", password="x" * 12)
    # The constrained user: devices and the site of Amsterdam only, all VLANs, and the change log.
    grant(ams_user, Device, ["view"], {"site__slug": "ams1"})
    grant(ams_user, Site, ["view"], {"slug": "ams1"})
    grant(ams_user, VLAN, ["view"])
    grant(ams_user, ObjectChange, ["view"])

    tenant = Tenant.objects.create(name="Acme", slug="acme")
    tag = Tag.objects.create(name="prod", slug="prod")
    sites = {slug: Site.objects.create(name=slug.upper(), slug=slug, status="active", tenant=tenant) for slug in SITES}
    juniper = Manufacturer.objects.create(name="Juniper", slug="juniper")
    cisco = Manufacturer.objects.create(name="Cisco", slug="cisco")
    types = [
        DeviceType.objects.create(manufacturer=juniper, model="QFX5120", slug="qfx5120"),
        DeviceType.objects.create(manufacturer=cisco, model="C9300", slug="c9300"),
    ]
    leaf = DeviceRole.objects.create(name="Leaf", slug="leaf")
    spine = DeviceRole.objects.create(name="Spine", slug="spine")
    devices = []
    for slug, count in SITES.items():
        rack = Rack.objects.create(name=f"{slug}-r1", site=sites[slug], status="active")
        for n in range(1, count + 1):
            device = Device.objects.create(
                name=f"{slug}-leaf{n}",
                site=sites[slug],
                rack=rack,
                role=leaf if n > 1 else spine,
                device_type=types[n % 2],
                tenant=tenant,
                serial=f"SN-{slug}-{n}",
                status=DeviceStatusChoices.STATUS_ACTIVE if n % 3 else DeviceStatusChoices.STATUS_PLANNED,
            )
            device.tags.add(tag)
            devices.append(device)
    interfaces = [
        Interface.objects.create(device=d, name=f"et-0/0/{i}", type="10gbase-x-sfpp") for d in devices for i in range(2)
    ]
    for n, slug in enumerate(SITES, start=1):
        Prefix.objects.create(prefix=f"10.{n}.0.0/16", scope=sites[slug], status="active")
    ams_leaf1 = Device.objects.get(name="ams1-leaf1")
    ip = IPAddress.objects.create(
        address="10.1.0.1/24", assigned_object=interfaces[0], dns_name="ams1-leaf1.example.net"
    )
    ams_leaf1.primary_ip4 = ip
    ams_leaf1.save()
    IPAddress.objects.create(
        address="10.2.0.1/24", assigned_object=Interface.objects.get(device__name="fra1-leaf1", name="et-0/0/0")
    )
    VLAN.objects.create(vid=100, name="servers", site=sites["ams1"], status="active")
    VLAN.objects.create(vid=200, name="storage", site=sites["fra1"], status="active")

    # Change log, written by NetBox's own change logging as for a real request.
    request = RequestFactory().get("/")
    request.user, request.id = admin, uuid.uuid4()
    with event_tracking(request):
        for name in ("ams1-leaf2", "fra1-leaf2"):
            device = Device.objects.get(name=name)
            device.snapshot()
            device.status = DeviceStatusChoices.STATUS_FAILED
            device.save()
        Device.objects.get(name="fra1-leaf5").delete()
        VLAN.objects.get(vid=200).delete()
        temp = VLAN.objects.create(vid=999, name="temp", status="active")
        temp.delete()
        hook = Webhook.objects.create(
            name="ticketing",
            payload_url="https://tickets.example.net/hook",
            secret="webhook-signing-secret",
            additional_headers="Authorization: Bearer s3cr3t",
        )
        hook.snapshot()
        hook.secret = "rotated-signing-secret"
        hook.save()

    # NetBox indexes for search after commit; these rows never commit, so index them now.
    for indexer in registry["search"].values():
        search_backend.cache(indexer.model.objects.all(), remove_existing=False)
    return {"admin": admin, "ams_user": ams_user, "nobody": nobody, "sites": sites}


@pytest.fixture(scope="module")
def nb(django_db_setup, django_db_blocker):
    """Realistic NetBox data shared by a module's tests, rolled back afterwards."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build()
        transaction.set_rollback(True)


@pytest.fixture
def admin(nb, db):
    return nb["admin"]


@pytest.fixture
def ams_user(nb, db):
    return nb["ams_user"]


@pytest.fixture
def nobody(nb, db):
    return nb["nobody"]


# ------------------------------------------------------------------------------------------------
# Correctness against the ORM


def test_registry_contract_for_both_model_paths():
    assert set(enabled_tools()) == {
        "list_object_types",
        "describe_object_type",
        "query_objects",
        "get_object",
        "search",
        "count_objects",
        "get_changelog",
        # computed answers (tests/test_computed_tools.py)
        "available_ips",
        "available_prefixes",
        "prefix_utilization",
        "available_vlans",
        "available_asns",
        "rack_space",
        "trace_cable",
        "device_connections",
        "device_config",
    }  # proposal tools: test_changes.py
    for name, tool in TOOLS.items():
        assert tool.name == name
        assert tool.input_schema["type"] == "object" and "properties" in tool.input_schema
        assert 20 < len(tool.description) < 600, name
    assert "dcim.device" in TOOLS["query_objects"].description
    assert (
        TOOLS["query_objects"].summarize({"object_type": "dcim.device", "filters": {"site": "ams1"}})
        == "querying dcim.device (site=ams1)"
    )
    assert TOOLS["get_object"].summarize({"object_type": "dcim.device", "id": 7}) == "reading dcim.device #7"
    assert TOOLS["search"].summarize("not a dict") == "searching search"
    assert TOOLS["get_changelog"].summarize({"since": "24h"}) == "reading change log (since 24h)"
    assert len(TOOLS["query_objects"].summarize({"object_type": "x" * 500})) <= 120


def test_query_objects_matches_orm_with_filters_ordering_and_paging(admin):
    result = call(
        admin,
        "query_objects",
        object_type="dcim.device",
        filters={"site": "ams1", "status": ["active", "planned"]},
        ordering=["-name"],
        limit=3,
    )
    truth = Device.objects.filter(site__slug="ams1", status__in=["active", "planned"]).order_by("-name")
    assert result["count"] == truth.count() == 5  # ams1-leaf2 failed
    assert [r["name"] for r in result["results"]] == [d.name for d in truth[:3]]
    assert result["has_more"] is True and result["returned"] == 3
    first = result["results"][0]
    assert first["url"] == f"/dcim/devices/{first['id']}/" and first["display"] == first["name"]

    rest = call(
        admin,
        "query_objects",
        object_type="dcim.device",
        filters={"site": "ams1", "status": ["active", "planned"]},
        ordering=["-name"],
        limit=3,
        offset=3,
    )
    assert [r["name"] for r in rest["results"]] == [d.name for d in truth[3:]]
    assert rest["has_more"] is False


def test_query_objects_fields_give_nested_links_to_netbox_pages(admin):
    result = call(
        admin,
        "query_objects",
        object_type="dcim.device",
        filters={"name": "ams1-leaf1"},
        fields=["name", "site", "rack", "primary_ip4", "status", "tags", "serial"],
    )
    (device,) = result["results"]
    site = Site.objects.get(slug="ams1")
    assert device["site"]["url"] == f"/dcim/sites/{site.pk}/" and device["site"]["display"] == "AMS1"
    assert device["primary_ip4"]["address"] == "10.1.0.1/24"
    assert device["primary_ip4"]["url"].startswith("/ipam/ip-addresses/")
    assert device["status"]["value"] == "active" and device["serial"] == "SN-ams1-1"
    assert [t["name"] for t in device["tags"]] == ["prod"]
    assert set(device) == {"id", "display", "url", "name", "site", "rack", "primary_ip4", "status", "tags", "serial"}
    assert not any("/api/" in json.dumps(v) for v in device.values())


def test_get_object_returns_all_visible_fields_or_the_chosen_ones(admin):
    device = Device.objects.get(name="fra1-leaf1")
    full = call(admin, "get_object", object_type="dcim.device", id=device.pk)["object"]
    assert full["name"] == "fra1-leaf1" and full["interface_count"] == 2 and full["site"]["display"] == "FRA1"
    assert full["url"] == f"/dcim/devices/{device.pk}/"
    chosen = call(admin, "get_object", object_type="dcim.device", id=device.pk, fields=["serial"])["object"]
    assert chosen == {
        "id": device.pk,
        "display": "fra1-leaf1",
        "url": f"/dcim/devices/{device.pk}/",
        "serial": "SN-fra1-1",
    }


def test_count_objects_and_group_by_match_orm(admin):
    assert call(admin, "count_objects", object_type="dcim.device")["count"] == Device.objects.count() == 14
    per_site = call(admin, "count_objects", object_type="dcim.device", group_by="site")
    assert {g["display"]: g["count"] for g in per_site["groups"]} == {"AMS1": 6, "FRA1": 4, "LON1": 4}
    assert per_site["groups"][0]["url"] == f"/dcim/sites/{Site.objects.get(slug='ams1').pk}/"
    per_status = call(
        admin, "count_objects", object_type="dcim.device", group_by="status", filters={"site": ["ams1", "fra1"]}
    )
    truth = {
        s: Device.objects.filter(site__slug__in=["ams1", "fra1"], status=s).count()
        for s in ("active", "planned", "failed")
    }
    assert {g["value"]: g["count"] for g in per_status["groups"]} == {k: v for k, v in truth.items() if v}
    assert {g["display"] for g in per_status["groups"]} == {"Active", "Planned", "Failed"}
    per_vendor = call(admin, "count_objects", object_type="dcim.device", group_by="device_type__manufacturer")
    assert {g["display"]: g["count"] for g in per_vendor["groups"]} == {
        "Juniper": Device.objects.filter(device_type__manufacturer__slug="juniper").count(),
        "Cisco": Device.objects.filter(device_type__manufacturer__slug="cisco").count(),
    }


def test_search_uses_netbox_search_and_links_results(admin):
    result = call(admin, "search", query="fra1-leaf3")
    assert [(r["object_type"], r["display"]) for r in result["results"]] == [("dcim.device", "fra1-leaf3")]
    assert result["results"][0]["url"] == Device.objects.get(name="fra1-leaf3").get_absolute_url()
    by_ip = call(admin, "search", query="10.1.0.1")
    assert ("ipam.ipaddress", "10.1.0.1/24") in {(r["object_type"], r["display"]) for r in by_ip["results"]}
    only_sites = call(admin, "search", query="ams1", object_types=["dcim.site"])
    assert {r["object_type"] for r in only_sites["results"]} == {"dcim.site"}


def test_changelog_for_an_object_a_type_and_a_window(admin):
    device = Device.objects.get(name="ams1-leaf2")
    result = call(admin, "get_changelog", object_type="dcim.device", object_id=device.pk)
    (change,) = result["changes"]
    assert change["action"] == "update" and change["user"] == "tools-admin"
    assert change["changes"]["status"] == {"before": "active", "after": "failed"}
    assert change["object"] == {
        "object_type": "dcim.device",
        "id": device.pk,
        "display": "ams1-leaf2",
        "url": f"/dcim/devices/{device.pk}/",
    }
    deletes = call(admin, "get_changelog", object_type="dcim.device", action="delete")
    assert [c["object"]["display"] for c in deletes["changes"]] == ["fra1-leaf5"]
    assert "url" not in deletes["changes"][0]["object"]
    window = call(admin, "get_changelog", since="1h")
    assert window["count"] == ObjectChange.objects.count()
    ObjectChange.objects.filter(pk=change["id"]).update(time="2020-01-01T00:00:00Z")
    assert call(admin, "get_changelog", since="2021-01-01")["count"] == ObjectChange.objects.count() - 1
    assert call(admin, "get_changelog", until="2020-01-01")["count"] == 1


def test_changelog_of_an_object_includes_its_components_changes(admin, ams_user):
    """As on NetBox's change log tab: an interface change shows in its device's change log, for
    users who may see the interface."""
    device = Device.objects.get(name="ams1-leaf3")
    interface = device.interfaces.first()
    request = RequestFactory().get("/")
    request.user, request.id = admin, uuid.uuid4()
    with event_tracking(request):
        interface.snapshot()
        interface.description = "uplink to spine"
        interface.save()
    (change,) = call(admin, "get_changelog", object_type="dcim.device", object_id=device.pk)["changes"]
    assert change["object"]["object_type"] == "dcim.interface"
    assert change["changes"] == {"description": {"before": "", "after": "uplink to spine"}}
    # The constrained user sees the device but not interfaces: the change is not theirs to see.
    assert call(ams_user, "get_changelog", object_type="dcim.device", object_id=device.pk)["count"] == 0


def test_a_type_without_its_object_type_row_reads_as_one_without_records(admin, ams_user):
    """NetBox creates a model's ContentType row on first use, so a database may lack some (seen on a demo
    database). The tools run in a read-only transaction: reading the change log and searching must not try
    to create one, and the type reads as one without change records or search entries."""
    users = (admin, ams_user)
    before = {user: call(user, "get_changelog", since="2021-01-01", limit=50) for user in users}
    found = {user: call(user, "search", query="leaf") for user in users}
    with transaction.atomic():
        ContentType.objects.get_by_natural_key("circuits", "provider").delete()
        ContentType.objects.clear_cache()
        for user in users:
            assert call(user, "get_changelog", since="2021-01-01", limit=50) == before[user], user.username
            assert call(user, "get_changelog", object_type="circuits.provider") == {
                "count": 0,
                "offset": 0,
                "returned": 0,
                "has_more": False,
                "since": None,
                "until": None,
                "changes": [],
            }
            assert call(user, "search", query="leaf") == found[user], user.username
            assert call(user, "search", query="leaf", object_types=["circuits.provider"])["count"] == 0
        assert not ContentType.objects.filter(app_label="circuits", model="provider").exists()
        transaction.set_rollback(True)
    assert before[admin]["count"] > before[ams_user]["count"] > 0
    ContentType.objects.clear_cache()  # the row is back: warm the cache again for the tests that count queries
    ContentType.objects.get_for_models(*(info.model for info in object_types().values()))


def test_list_and_describe_object_types(admin):
    listed = call(admin, "list_object_types")
    assert {"device", "site", "interface"} <= set(listed["object_types"]["dcim"])
    assert "prefix" in listed["object_types"]["ipam"]
    assert listed["count"] > 100
    assert set(call(admin, "list_object_types", app="ipam")["object_types"]) == {"ipam"}
    described = call(admin, "describe_object_type", object_type="dcim.device")
    assert {"name", "site", "status", "primary_ip4"} <= set(described["fields"])
    assert described["filters"]["site"] == "slug" and described["filters"]["site_id"] == "id"
    assert "active" in described["filters"]["status"] and described["filters"]["q"] == "text"


def test_result_objects_gives_links_for_the_ui(admin):
    result = call(admin, "query_objects", object_type="dcim.device", filters={"site": "lon1"}, ordering=["name"])
    links = result_objects(result)
    assert links[0] == {"display": "lon1-leaf1", "url": Device.objects.get(name="lon1-leaf1").get_absolute_url()}
    assert len(links) == 4
    device = Device.objects.get(name="ams1-leaf2")
    assert result_objects(call(admin, "get_object", object_type="dcim.device", id=device.pk)) == [
        {"display": "ams1-leaf2", "url": device.get_absolute_url()}
    ]
    changes = call(admin, "get_changelog", object_type="dcim.device", object_id=device.pk)
    assert result_objects(changes) == [{"display": "ams1-leaf2", "url": device.get_absolute_url()}]
    assert result_objects({"error": "x"}) == []


# ------------------------------------------------------------------------------------------------
# Bad input: a message the model can act on, never an exception, never "filter ignored"


@pytest.mark.parametrize(
    "name, arguments, expected",
    [
        ("query_objects", {"object_type": "dcim.devices"}, "unknown object type 'dcim.devices'"),
        (
            "query_objects",
            {"object_type": "dcim.device", "filters": {"sitename": "ams1"}},
            "unknown filter 'sitename' (did you mean site",
        ),
        (
            "query_objects",
            {"object_type": "dcim.device", "filters": {"id": "abc"}},
            "filter 'id': Enter a whole number.",
        ),
        (
            "query_objects",
            {"object_type": "dcim.device", "filters": {"status": "broken"}},
            "filter 'status': Select a valid choice. broken is not one of the available choices.",
        ),
        (
            "query_objects",
            {"object_type": "dcim.device", "filters": {"site": {"slug": "ams1"}}},
            "filter 'site': values must be strings, numbers, booleans",
        ),
        (
            "query_objects",
            {"object_type": "dcim.device", "filters": ["site=ams1"]},
            "filters: ['site=ams1'] is not of type 'object'",
        ),
        ("query_objects", {"object_type": "dcim.device", "limit": 10000}, "limit must be between 1 and 50"),
        ("query_objects", {"object_type": "dcim.device", "limit": "ten"}, "limit: 'ten' is not of type 'integer'"),
        ("query_objects", {"object_type": "dcim.device", "offset": -1}, "offset: -1 is less than the minimum of 0"),
        ("query_objects", {"object_type": "dcim.device", "fields": ["name", "colour"]}, "unknown field(s) 'colour'"),
        (
            "query_objects",
            {"object_type": "dcim.device", "ordering": ["-height"]},
            "'height' is not a field of dcim.device",
        ),
        (
            "query_objects",
            {"object_type": "dcim.device", "colour": "red"},
            "Additional properties are not allowed ('colour' was unexpected)",
        ),
        ("query_objects", {}, "'object_type' is a required property"),
        ("get_object", {"object_type": "dcim.device", "id": "seven"}, "id: 'seven' is not of type 'integer'"),
        (
            "count_objects",
            {"object_type": "dcim.device", "group_by": "site__nonsense"},
            "'site__nonsense' is not a field of dcim.device",
        ),
        ("count_objects", {"object_type": "dcim.device", "group_by": "tags"}, "'tags' is not a single-valued field"),
        ("search", {"query": "  "}, "query must not be empty"),
        ("search", {"query": "x", "object_types": ["dcim.nothing"]}, "unknown object type 'dcim.nothing'"),
        ("get_changelog", {"since": "last tuesday"}, "since must be an ISO date/time"),
        ("get_changelog", {"object_id": 3}, "object_id needs object_type"),
        ("get_changelog", {"action": "rename"}, "action: 'rename' is not one of ['create', 'update', 'delete']"),
        ("describe_object_type", {"object_type": 42}, "object_type: 42 is not of type 'string'"),
        ("launch_rockets", {}, "unknown tool 'launch_rockets'; available tools: list_object_types"),
    ],
)
def test_bad_input_is_a_readable_error(admin, name, arguments, expected):
    result = run_tool(name, arguments, admin)
    assert set(result) == {"error"}
    assert expected in result["error"]


def test_non_object_arguments_are_an_error(admin):
    assert run_tool("query_objects", ["dcim.device"], admin) == {"error": "arguments must be a JSON object"}
    assert "object_type" in run_tool("query_objects", None, admin)["error"]


def test_null_arguments_mean_omitted(admin):
    result = run_tool(
        "query_objects", {"object_type": "dcim.site", "filters": None, "limit": None, "fields": None}, admin
    )
    assert result["count"] == 3 and result["returned"] == 3


def test_filter_values_for_related_objects_that_do_not_exist_match_nothing(admin):
    # "No such site" reads the same as "a site you may not see" (see test_tools_permissions): no rows.
    result = call(admin, "query_objects", object_type="dcim.device", filters={"site": "atlantis"})
    assert result["count"] == 0 and result["results"] == []
    mixed = call(admin, "query_objects", object_type="dcim.device", filters={"site": ["atlantis", "lon1"]})
    assert mixed["count"] == 4
    assert call(admin, "count_objects", object_type="dcim.device", filters={"site_id": 999999})["count"] == 0


# ------------------------------------------------------------------------------------------------
# Size caps (the statement timeout is in test_tools_timeout.py)


def test_result_size_cap_cuts_items_with_a_clear_marker(admin):
    with plugins_config(tool_max_chars=1500):
        result = call(
            admin,
            "query_objects",
            object_type="dcim.device",
            ordering=["name"],
            limit=20,
            fields=["name", "site", "rack", "role", "device_type", "serial"],
        )
    assert len(json.dumps(result)) <= 1500
    assert 0 < result["returned"] < 14 and result["has_more"] is True
    assert result["next_offset"] == result["returned"]
    assert "fit the 1500-character limit" in result["truncated"]
    assert result["count"] == 14


def test_result_cap_on_a_single_large_object_shortens_values(admin):
    device = Device.objects.get(name="lon1-leaf1")
    device.comments = "very long comment " * 500
    device.save()
    with plugins_config(tool_max_chars=1000):
        result = call(admin, "get_object", object_type="dcim.device", id=device.pk, fields=["name", "comments"])
    assert result["object"]["comments"].endswith("…") and len(json.dumps(result)) <= 1000
    assert "long values were cut" in result["truncated"]


def test_max_results_setting_bounds_limit(admin):
    with plugins_config(tool_max_results=5):
        assert (
            "limit must be between 1 and 5" in call(admin, "query_objects", object_type="dcim.device", limit=6)["error"]
        )
        assert call(admin, "query_objects", object_type="dcim.device")["returned"] == 5


def test_tools_never_write(admin):
    """Tool calls run read-only and are rolled back, so the caller's transaction is untouched."""
    before = ObjectChange.objects.count()
    call(admin, "get_changelog", since="1h")
    with connection.cursor() as cursor:
        cursor.execute("SHOW transaction_read_only")
        assert cursor.fetchone()[0] == "off"
    assert ObjectChange.objects.count() == before


# ------------------------------------------------------------------------------------------------
# SQL cost: a bounded number of queries per call, independent of the number of results


def queries(user, name, **arguments):
    with CaptureQueriesContext(connection) as captured:
        result = run_tool(name, arguments, user)
    assert "error" not in result, result
    return len(captured.captured_queries)


@pytest.mark.parametrize("user", ["admin", "ams_user"])
def test_query_count_does_not_grow_with_results(nb, db, user):
    user = nb[user]
    fields = ["name", "site", "rack", "role", "device_type", "tenant", "primary_ip4", "tags", "status", "custom_fields"]
    call(user, "query_objects", object_type="dcim.device", limit=1)  # permissions are cached per user object
    few = queries(user, "query_objects", object_type="dcim.device", fields=fields, limit=2)
    many = queries(user, "query_objects", object_type="dcim.device", fields=fields, limit=50)
    assert few == many <= 20  # one query per relation, whatever the number of rows
    assert (
        queries(
            user, "query_objects", object_type="dcim.interface", limit=50, fields=["name", "device", "type", "enabled"]
        )
        <= 10
    )


def test_no_type_costs_a_query_per_result(admin):
    """Every exposed type with rows in the data: a page of 50 costs about what a page of 1 does.
    (A page of 1 may skip a prefetch whose relation is empty on its one row, hence the small slack.)"""
    checked = []
    for label, info in object_types().items():
        if info.model.objects.count() < 2:
            continue
        few = queries(admin, "query_objects", object_type=label, limit=1)
        many = queries(admin, "query_objects", object_type=label, limit=50)
        assert many <= few + 3, label
        checked.append(label)
    assert {"dcim.device", "dcim.interface", "dcim.rack", "ipam.ipaddress", "ipam.prefix", "extras.taggeditem"} <= set(
        checked
    )


def test_unnamed_devices_cost_no_query_each(admin):
    """Device.__str__ of an unnamed device reads its virtual chassis and device type: prefetched."""
    chassis = VirtualChassis.objects.create(name="lon1-stack")
    model = Device.objects.get(name="lon1-leaf1")
    for position in range(1, 6):
        device = Device.objects.create(
            site=model.site,
            device_type=model.device_type,
            role=model.role,
            virtual_chassis=chassis,
            vc_position=position,
        )
        Interface.objects.create(device=device, name="xe-0/0/0", type="10gbase-x-sfpp")
    filters = {"virtual_chassis_id": chassis.pk}
    result = call(admin, "query_objects", object_type="dcim.device", filters=filters, limit=50)
    assert sorted(r["display"] for r in result["results"]) == [f"lon1-stack:{n}" for n in range(1, 6)]
    assert queries(admin, "query_objects", object_type="dcim.device", filters=filters, limit=1) == queries(
        admin, "query_objects", object_type="dcim.device", filters=filters, limit=50
    )
    interfaces = {"object_type": "dcim.interface", "filters": {"virtual_chassis_id": chassis.pk}, "fields": ["device"]}
    assert queries(admin, "query_objects", **interfaces, limit=1) == queries(
        admin, "query_objects", **interfaces, limit=50
    )


@pytest.mark.parametrize("user", ["admin", "cabling_viewer"])
def test_link_peers_cost_no_query_per_peer(nb, db, user):
    """Link peers of every type (interfaces, front ports, circuit terminations) come with their device or
    circuit and cable, whatever their number: NetBox's own prefetch does so for interface peers only."""
    if user == "cabling_viewer":  # sees the cables and ports, and the devices of Amsterdam only
        user = get_user_model().objects.create_user("tools-cabling")
        grant(user, Device, ["view"], {"site__slug": "ams1"})
        for model in (Interface, Cable, FrontPort, CircuitTermination):
            grant(user, model, ["view"])
    else:
        user = nb[user]
    site, other = nb["sites"]["ams1"], nb["sites"]["fra1"]
    role, device_type = DeviceRole.objects.first(), DeviceType.objects.first()
    provider = Provider.objects.create(name="Peering", slug="peering")
    circuit_type = CircuitType.objects.create(name="Dark fibre", slug="dark-fibre")

    def cabled(name, count):
        device, panel, far = (
            Device.objects.create(name=f"{name}{suffix}", site=at, role=role, device_type=device_type)
            for suffix, at in (("", site), ("-panel", site), ("-far", other))
        )
        for n in range(count):
            if n % 3 == 0:
                peer = Interface.objects.create(device=far, name=f"eth{n}", type="1000base-t")
            elif n % 3 == 1:
                peer = FrontPort.objects.create(device=panel, name=f"front{n}", type="8p8c")
            else:
                circuit = Circuit.objects.create(cid=f"{name}-{n}", provider=provider, type=circuit_type)
                peer = CircuitTermination.objects.create(circuit=circuit, termination=site, term_side="A")
            own = Interface.objects.create(device=device, name=f"eth{n}", type="1000base-t")
            Cable(a_terminations=[own], b_terminations=[peer]).save()
        return {
            "object_type": "dcim.interface",
            "filters": {"device_id": device.pk},
            "fields": ["name", "device", "link_peers", "link_peers_type"],
        }

    few, many = cabled("ams1-few", 3), cabled("ams1-many", 12)
    call(user, "query_objects", **few)  # content types and permissions are cached after a first call
    assert queries(user, "query_objects", **few) == queries(user, "query_objects", **many)
    peers = [peer for row in call(user, "query_objects", **many)["results"] for peer in row["link_peers"]]
    assert len(peers) == 12 and {"ams1-many-panel"} < {(peer.get("device") or {}).get("display") for peer in peers}


def test_no_query_loads_a_type_the_user_may_view_none_of(nb, db):
    """Masking replaces a relation to such a type whatever was loaded (a user who may view no cables
    sees no cable or link peer): the relation and what is prefetched through it are not loaded."""
    user = get_user_model().objects.create_user("tools-no-cables")
    grant(user, Interface, ["view"])
    ams, fra = (Interface.objects.get(device__name=f"{site}-leaf2", name="et-0/0/1") for site in ("ams1", "fra1"))
    Cable(a_terminations=[ams], b_terminations=[fra]).save()
    arguments = {"object_type": "dcim.interface", "filters": {"id": ams.pk}, "fields": ["cable", "link_peers"]}
    with CaptureQueriesContext(connection) as captured:
        result = run_tool("query_objects", arguments, user)
    assert result["results"] == [
        {"id": ams.pk, "display": "et-0/0/1", "url": f"/dcim/interfaces/{ams.pk}/", "cable": None, "link_peers": []}
    ]
    assert not [query for query in captured.captured_queries if '"dcim_cable' in query["sql"]]
    assert call(nb["admin"], "query_objects", **arguments)["results"][0]["cable"] is not None


@pytest.mark.parametrize(
    "name, arguments, bound",
    [
        # Each call has 4 statements of overhead: savepoint, set_config (timeout, read-only), rollback, release.
        # (+1 for a constrained user: which related objects (here: sites) they may view, for masking)
        ("query_objects", {"object_type": "dcim.device", "filters": {"site": "ams1"}}, 12),
        ("get_object", {"object_type": "dcim.device", "id": None}, 19),
        ("count_objects", {"object_type": "dcim.device", "group_by": "site"}, 7),
        # (+1: which object types have a row; +1 for a constrained user: what displays read, loaded to be masked)
        ("search", {"query": "leaf"}, 14),
        ("get_changelog", {"since": "1h", "limit": 50}, 8),  # (+1: which object types have a row)
        ("list_object_types", {}, 4),
        ("describe_object_type", {"object_type": "dcim.device"}, 6),
    ],
)
def test_query_count_is_bounded_per_tool(admin, ams_user, name, arguments, bound):
    if "id" in arguments:
        arguments = {**arguments, "id": Device.objects.get(name="ams1-leaf1").pk}
    for user in (admin, ams_user):
        call(user, "list_object_types")
        assert queries(user, name, **arguments) <= bound, (name, user.username)
