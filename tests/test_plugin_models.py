"""A third-party plugin's objects (netbox-plugin-dns, enabled in the tests only): the assistant finds, reads and
describes them like NetBox's own, without a list of types, and only as far as the user may view them.
"""

import pytest
from django.contrib.auth import get_user_model
from netbox_dns.models import NameServer, View, Zone

from netbox_chatbox.page_context import resolve_page
from netbox_chatbox.tools import run_tool
from tests.conftest import grant

SOA = {"default_ttl": 3600, "soa_ttl": 3600, "soa_refresh": 3600, "soa_retry": 600, "soa_expire": 86400}


def make_zone(name, nameserver):
    """A zone in the default view (made by the plugin's migration, gone after a flush)."""
    view = View.objects.get_or_create(default_view=True, defaults={"name": "_default_"})[0]
    return Zone.objects.create(
        name=name, view=view, soa_mname=nameserver, soa_rname=f"hostmaster.{name}", soa_minimum=300, **SOA
    )


@pytest.fixture
def zones(db):
    nameserver = NameServer.objects.create(name="ns1.example.net")
    return {name: make_zone(name, nameserver) for name in ("ams.example.net", "fra.example.net")}


@pytest.fixture
def ams_dns(db):
    """May view the zone ams.example.net (a constrained ObjectPermission) and the DNS views, no nameserver."""
    user = get_user_model().objects.create_user("ams-dns")
    grant(user, Zone, ["view"], constraints={"name": "ams.example.net"})
    grant(user, View, ["view"])  # Zone.__str__ reads its view ("[view] name" outside the default one)
    return user


def _not_found(user, pk):
    result = run_tool("get_object", {"object_type": "netbox_dns.zone", "id": pk}, user)
    assert set(result) == {"error"}, result
    return result["error"].replace(str(pk), "<id>")


def test_a_plugin_object_is_read_for_a_permitted_user_and_missing_for_others(zones, ams_dns):
    ams, fra = zones["ams.example.net"], zones["fra.example.net"]
    result = run_tool("get_object", {"object_type": "netbox_dns.zone", "id": ams.pk}, ams_dns)
    zone = result["object"]
    assert zone["display"] == "ams.example.net" and zone["url"] == f"/plugins/netbox-dns/zones/{ams.pk}/"
    assert zone["soa_rname"] == "hostmaster.ams.example.net" and zone["view"]["display"] == "_default_"
    assert zone["soa_mname"] is None  # a nameserver the user may not view: not shown
    # The zone the user may not view reads exactly like one that does not exist.
    missing = Zone.objects.order_by("-pk").first().pk + 1000
    assert _not_found(ams_dns, fra.pk) == _not_found(ams_dns, missing) == "netbox_dns.zone with id <id> not found"
    nobody = get_user_model().objects.create_user("nobody-dns")
    assert _not_found(nobody, ams.pk) == _not_found(nobody, missing)
    # Its nameserver is another type, not granted: missing too.
    nameserver = run_tool("get_object", {"object_type": "netbox_dns.nameserver", "id": ams.soa_mname_id}, ams_dns)
    assert set(nameserver) == {"error"}


def test_a_plugin_type_is_listed_queried_through_its_filterset_and_described(zones, ams_dns):
    types = run_tool("list_object_types", {}, ams_dns)["object_types"]
    assert types["netbox_dns"] == ["view", "zone"]
    everything = run_tool("query_objects", {"object_type": "netbox_dns.zone"}, ams_dns)
    assert [row["display"] for row in everything["results"]] == ["ams.example.net"] and everything["count"] == 1
    filtered = run_tool(
        "query_objects", {"object_type": "netbox_dns.zone", "filters": {"name": "fra.example.net"}}, ams_dns
    )
    assert filtered["count"] == 0


def test_a_plugin_objects_page_is_the_object_the_user_may_view(zones, ams_dns):
    ams, fra = zones["ams.example.net"], zones["fra.example.net"]
    assert resolve_page(ams_dns, ams.get_absolute_url()) == {
        "kind": "object",
        "type": "netbox_dns.zone",
        "type_name": "Zone",
        "id": ams.pk,
        "display": "ams.example.net",
        "url": ams.get_absolute_url(),
    }
    assert resolve_page(ams_dns, fra.get_absolute_url()) is None
    assert resolve_page(ams_dns, f"{ams.get_absolute_url()}changelog/")["id"] == ams.pk  # a tab of its page


def test_a_plugin_list_page_is_its_type_and_the_filters_its_filterset_knows(zones, ams_dns):
    address = "/plugins/netbox-dns/zones/?name=ams.example.net&bogus=1&per_page=5"
    assert resolve_page(ams_dns, address) == {
        "kind": "list",
        "type": "netbox_dns.zone",
        "type_name": "Zones",
        "filters": {"name": ["ams.example.net"]},
        "url": "/plugins/netbox-dns/zones/?name=ams.example.net",
    }
    assert resolve_page(get_user_model().objects.create_user("nobody-dns"), address) is None
