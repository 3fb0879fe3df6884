"""Every tool under NetBox ObjectPermissions: a superuser, a user who may view only Amsterdam's
devices and site (plus all VLANs and the change log), and a user without permissions.

An object the user may not view must be indistinguishable from one that does not exist: absent
from results, counts, groups, search and change log, and "not found" by id with the same message.
"""

import json
import uuid

import pytest
from circuits.models import Circuit, CircuitTermination, CircuitType, Provider
from core.models import ObjectChange
from dcim.models import Cable, Device, DeviceType, Interface, Manufacturer, RearPort, Site
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.test import RequestFactory
from ipam.models import VRF, IPAddress
from netbox.context_managers import event_tracking
from tenancy.models import Tenant

from netbox_chatbox.tools.reads import check_reads
from netbox_chatbox.tools.types import ToolError, get_object_type
from netbox_chatbox.tools.visibility import Visibility
from tests.conftest import grant
from tests.test_tools import admin, ams_user, call, nb, nobody  # noqa: F401 (fixtures)

AMS_DEVICES = [f"ams1-leaf{n}" for n in range(1, 7)]


def names(result):
    return sorted(r["display"] for r in result["results"])


def test_list_object_types_shows_only_viewable_types(admin, ams_user, nobody):
    assert {"device", "site", "rack", "interface"} <= set(call(admin, "list_object_types")["object_types"]["dcim"])
    ams = call(ams_user, "list_object_types")["object_types"]
    assert ams["dcim"] == ["device", "site"] and ams["ipam"] == ["vlan"]
    assert "circuits" not in ams
    assert not {"dcim", "ipam", "circuits", "tenancy", "virtualization"} & set(
        call(nobody, "list_object_types")["object_types"]
    )


def test_describe_object_type_is_schema_not_data(admin, nobody):
    assert call(nobody, "describe_object_type", object_type="dcim.device") == call(
        admin, "describe_object_type", object_type="dcim.device"
    )


def test_query_objects_returns_only_visible_objects(admin, ams_user, nobody):
    everything = call(admin, "query_objects", object_type="dcim.device", limit=50)
    assert everything["count"] == Device.objects.count() == 14
    ams = call(ams_user, "query_objects", object_type="dcim.device", limit=50)
    assert names(ams) == AMS_DEVICES and ams["count"] == 6 and ams["has_more"] is False
    assert ams["count"] == Device.objects.restrict(ams_user, "view").count()
    assert names(call(ams_user, "query_objects", object_type="dcim.site")) == ["AMS1"]
    assert call(ams_user, "query_objects", object_type="dcim.rack")["count"] == 0
    assert call(ams_user, "query_objects", object_type="dcim.device", filters={"q": "fra1"})["count"] == 0
    for object_type in ("dcim.device", "dcim.site", "ipam.vlan"):
        result = call(nobody, "query_objects", object_type=object_type)
        assert result["count"] == 0 and result["results"] == []


def test_filtering_by_a_hidden_related_object_reads_like_a_missing_one(ams_user):
    hidden = call(ams_user, "query_objects", object_type="dcim.device", filters={"site": "fra1"})
    missing = call(ams_user, "query_objects", object_type="dcim.device", filters={"site": "atlantis"})
    assert hidden == missing and hidden["count"] == 0
    fra1, nowhere = Site.objects.get(slug="fra1").pk, 987654
    assert call(ams_user, "count_objects", object_type="dcim.device", filters={"site_id": fra1}) == call(
        ams_user, "count_objects", object_type="dcim.device", filters={"site_id": nowhere}
    )


def test_filtering_by_a_hidden_related_object_of_visible_objects_matches_nothing(admin, ams_user):
    """Amsterdam's devices belong to tenant Acme, which this user may not view: filtering by it must
    read like filtering by a tenant that does not exist (not list the devices, naming Acme)."""
    acme = Tenant.objects.get(slug="acme").pk
    assert call(admin, "count_objects", object_type="dcim.device", filters={"tenant": "acme"})["count"] == 14
    for filters, missing in (
        ({"tenant": "acme"}, {"tenant": "atlantis"}),
        ({"tenant_id": acme}, {"tenant_id": 987654}),
        ({"manufacturer": "juniper"}, {"manufacturer": "atlantis"}),
    ):
        assert call(ams_user, "query_objects", object_type="dcim.device", filters=filters) == call(
            ams_user, "query_objects", object_type="dcim.device", filters=missing
        )
        assert call(ams_user, "count_objects", object_type="dcim.device", filters=filters)["count"] == 0
    viewer = _granted(ams_user, Tenant, ["view"])
    assert call(viewer, "count_objects", object_type="dcim.device", filters={"tenant": "acme"})["count"] == 6


def test_a_filter_reading_a_hidden_relation_only_inside_a_subquery_is_refused(db):
    """Django names a subquery's tables by short aliases (U0, U1…): what a filter compares there is checked
    like the rest. Here a filter method (as a plugin's might be) selecting devices by their interfaces' VRF,
    for a user who may view every device and interface but only one VRF."""
    user = get_user_model().objects.create_user("vrf-limited")
    grant(user, Device, ["view"])
    grant(user, Interface, ["view"])
    grant(user, VRF, ["view"], {"name": "blue"})
    info, vis = get_object_type("dcim.device"), Visibility(user)
    devices = Device.objects.order_by()
    in_vrfs = devices.filter(pk__in=Interface.objects.filter(vrf_id__in=[1, 2]).values("device_id"))
    assert '"U0"."vrf_id" IN' in str(in_vrfs.query)
    correlated = devices.filter(Exists(Interface.objects.filter(device=OuterRef("pk"), vrf__isnull=False)))
    excluded = devices.exclude(interfaces__vrf_id=1)  # Django writes an exclusion across a relation as a subquery
    for probe in (in_vrfs, correlated, excluded):
        with pytest.raises(ToolError, match="it reads ipam.vrf objects, and your permissions do not let you view"):
            check_reads(info, "by_vrf", probe, vis)
    # What reads only visible data stays allowed, subquery or not.
    check_reads(
        info, "by_interface", devices.filter(pk__in=Interface.objects.filter(name="eth0").values("device_id")), vis
    )
    check_reads(info, "by_interface", devices.exclude(interfaces__name="eth0"), vis)
    grant(user, VRF, ["view"], name="all-vrfs")
    check_reads(info, "by_vrf", in_vrfs, Visibility(get_user_model().objects.get(pk=user.pk)))  # fresh permissions


def test_ordering_through_a_hidden_related_object_tells_nothing_about_it(admin, ams_user):
    """Tenants this user may not view sort as if the devices had none (by id, as ties do)."""
    Device.objects.filter(name="ams1-leaf1").update(tenant=Tenant.objects.create(name="Zeta", slug="zeta"))
    by_id = names_in_order(call(ams_user, "query_objects", object_type="dcim.device", ordering=["id"]))
    for ordering in (["tenant__name"], ["-tenant__name"], ["tenant"], ["-tenant"]):
        assert names_in_order(call(ams_user, "query_objects", object_type="dcim.device", ordering=ordering)) == by_id
    # Who may view tenants sees Zeta's device last (first when descending).
    shown = call(admin, "query_objects", object_type="dcim.device", ordering=["tenant__name"], limit=50)
    assert names_in_order(shown)[-1] == "ams1-leaf1"
    # Only Zeta visible: Acme's devices sort as if they had no tenant, after Zeta's.
    zeta_only = _granted(ams_user, Tenant, ["view"], {"slug": "zeta"})
    for ordering in (["tenant__name"], ["tenant"]):
        found = names_in_order(call(zeta_only, "query_objects", object_type="dcim.device", ordering=ordering))
        assert found == ["ams1-leaf1"] + [name for name in by_id if name != "ams1-leaf1"]
    viewer = _granted(ams_user, Tenant, ["view"])
    for ordering in (["tenant__name"], ["tenant"]):
        assert (
            names_in_order(call(viewer, "query_objects", object_type="dcim.device", ordering=ordering))[-1]
            == "ams1-leaf1"
        )
    assert (
        names_in_order(call(viewer, "query_objects", object_type="dcim.device", ordering=["-tenant"]))[0]
        == "ams1-leaf1"
    )


def names_in_order(result):
    return [r["display"] for r in result["results"]]


def _not_found(user, object_type, pk):
    result = call(user, "get_object", object_type=object_type, id=pk)
    assert set(result) == {"error"}
    return result["error"].replace(str(pk), "<id>")


def test_get_object_of_a_hidden_object_reads_exactly_like_a_missing_one(admin, ams_user, nobody):
    hidden = Device.objects.get(name="fra1-leaf1").pk
    missing = Device.objects.order_by("-pk").first().pk + 1000
    assert call(admin, "get_object", object_type="dcim.device", id=hidden)["object"]["display"] == "fra1-leaf1"
    assert (
        _not_found(ams_user, "dcim.device", hidden)
        == _not_found(ams_user, "dcim.device", missing)
        == "dcim.device with id <id> not found"
    )
    visible = Device.objects.get(name="ams1-leaf1").pk
    assert call(ams_user, "get_object", object_type="dcim.device", id=visible)["object"]["display"] == "ams1-leaf1"
    assert _not_found(nobody, "dcim.device", visible) == _not_found(nobody, "dcim.device", missing)
    site = Site.objects.get(slug="fra1").pk
    assert _not_found(ams_user, "dcim.site", site) == _not_found(ams_user, "dcim.site", missing)


def _granted(user, model, actions, constraints=None):
    grant(user, model, actions, constraints)
    return get_user_model().objects.get(pk=user.pk)  # a fresh permission cache


def _leaf1(user, fields=("site", "rack", "tenant", "device_type", "role", "tags", "primary_ip4")):
    return call(user, "query_objects", object_type="dcim.device", filters={"name": "ams1-leaf1"}, fields=list(fields))[
        "results"
    ][0]


def test_related_objects_the_user_may_not_view_read_like_missing_ones(admin, ams_user):
    """NetBox's own API names a visible object's related objects whatever the permissions; the tools don't."""
    full = _leaf1(admin)
    assert (full["site"]["display"], full["rack"]["display"], full["tenant"]["display"]) == ("AMS1", "ams1-r1", "Acme")
    assert [tag["display"] for tag in full["tags"]] == ["prod"] and full["primary_ip4"]["display"] == "10.1.0.1/24"
    seen = _leaf1(ams_user)  # may view Amsterdam's devices and site, nothing else of theirs
    assert seen["site"] == full["site"]
    assert [seen[f] for f in ("rack", "tenant", "device_type", "role", "primary_ip4")] == [None] * 5
    assert seen["tags"] == []
    whole = json.dumps(
        call(ams_user, "get_object", object_type="dcim.device", id=Device.objects.get(name="ams1-leaf1").pk)
    )
    for name in ("Acme", "ams1-r1", "QFX5120", "Juniper", "Spine", "prod", "10.1.0.1"):
        assert name not in whole
    # The same relation appears as soon as the user may view it (and only the objects they may view).
    ams_user = _granted(ams_user, Tenant, ["view"])
    assert _leaf1(ams_user)["tenant"] == full["tenant"]


def test_related_object_counts_count_only_what_the_user_may_view(admin, ams_user):
    fields = ["name", "device_count", "rack_count", "vlan_count", "prefix_count"]

    def ams1(user):
        return call(user, "get_object", object_type="dcim.site", id=Site.objects.get(slug="ams1").pk, fields=fields)[
            "object"
        ]

    assert {k: v for k, v in ams1(admin).items() if k in fields} == {
        "name": "AMS1",
        "device_count": 6,
        "rack_count": 1,
        "vlan_count": 1,
        "prefix_count": 1,
    }
    # This user may view Amsterdam's devices and all VLANs, but no racks and no prefixes.
    assert {k: v for k, v in ams1(ams_user).items() if k in fields} == {
        "name": "AMS1",
        "device_count": 6,
        "rack_count": 0,
        "vlan_count": 1,
        "prefix_count": 0,
    }
    # Counters NetBox stores on the object (interface_count…) too.
    leaf1 = Device.objects.get(name="ams1-leaf1").pk

    def interfaces(user):
        return call(user, "get_object", object_type="dcim.device", id=leaf1, fields=["interface_count"])["object"]

    assert interfaces(admin)["interface_count"] == 2 and interfaces(ams_user)["interface_count"] == 0
    assert interfaces(_granted(ams_user, Interface, ["view"], {"name": "et-0/0/1"}))["interface_count"] == 1


def test_a_generic_relation_to_a_hidden_object_is_empty(ams_user):
    ams_user = _granted(ams_user, IPAddress, ["view"])
    fields = ["address", "assigned_object_type", "assigned_object_id", "assigned_object"]

    def ip(user):
        return call(
            user, "query_objects", object_type="ipam.ipaddress", filters={"address": "10.1.0.1/24"}, fields=fields
        )["results"][0]

    unassigned = IPAddress.objects.create(address="10.9.0.1/24")
    loose = call(ams_user, "get_object", object_type="ipam.ipaddress", id=unassigned.pk, fields=fields)["object"]
    hidden = ip(ams_user)
    assert [hidden[f] for f in fields[1:]] == [loose[f] for f in fields[1:]] == [None, None, None]
    ams_user = _granted(ams_user, Interface, ["view"], {"device__site__slug": "ams1"})
    shown = ip(ams_user)
    assert shown["assigned_object_type"] == "dcim.interface" and shown["assigned_object"]["display"] == "et-0/0/0"
    assert shown["assigned_object"]["device"]["display"] == "ams1-leaf1"


def test_cable_ends_the_user_may_not_view_are_left_out(admin, ams_user):
    ams_end = Interface.objects.get(device__name="ams1-leaf2", name="et-0/0/1")
    fra_end = Interface.objects.get(device__name="fra1-leaf2", name="et-0/0/1")
    cable = Cable(a_terminations=[ams_end], b_terminations=[fra_end])
    cable.save()
    ams_user = _granted(ams_user, Cable, ["view"])
    ams_user = _granted(ams_user, Interface, ["view"], {"device__site__slug": "ams1"})

    def ends(user):
        found = call(
            user, "get_object", object_type="dcim.cable", id=cable.pk, fields=["a_terminations", "b_terminations"]
        )
        return [
            [(end["object"]["device"]["display"], end["object"]["display"]) for end in found["object"][side]]
            for side in ("a_terminations", "b_terminations")
        ]

    assert ends(admin) == [[("ams1-leaf2", "et-0/0/1")], [("fra1-leaf2", "et-0/0/1")]]
    assert ends(ams_user) == [[("ams1-leaf2", "et-0/0/1")], []]


def test_a_link_peer_displays_no_hidden_object(admin, ams_user):
    """A circuit termination's display names its circuit: not to a user who may not view the circuit,
    whether the cabled object is an interface or a port (whose peers NetBox's viewsets do not prefetch)."""
    provider = Provider.objects.create(name="Carrier", slug="carrier")
    circuit_type = CircuitType.objects.create(name="Transit", slug="transit")
    device = Device.objects.get(name="ams1-leaf3")
    ends = {
        "dcim.interface": Interface.objects.get(device=device, name="et-0/0/1"),
        "dcim.rearport": RearPort.objects.create(device=device, name="rear1", type="lc"),
    }
    for n, end in enumerate(ends.values()):
        circuit = Circuit.objects.create(cid=f"CID-HIDDEN{n}", provider=provider, type=circuit_type)
        peer = CircuitTermination.objects.create(circuit=circuit, termination=device.site, term_side="A")
        Cable(a_terminations=[end], b_terminations=[peer]).save()
    for model in (Cable, CircuitTermination, RearPort):
        ams_user = _granted(ams_user, model, ["view"])
    ams_user = _granted(ams_user, Interface, ["view"], {"device__site__slug": "ams1"})

    def peer(user, object_type):
        found = call(
            user, "query_objects", object_type=object_type, filters={"id": ends[object_type].pk}, fields=["link_peers"]
        )
        (peer,) = found["results"][0]["link_peers"]
        return peer["display"], peer["circuit"] and peer["circuit"]["display"]

    for n, object_type in enumerate(ends):
        assert peer(admin, object_type) == (f"CID-HIDDEN{n}: Termination A", f"CID-HIDDEN{n}")
        assert peer(ams_user, object_type) == (": Termination A", None)


def test_groups_of_hidden_related_objects_read_like_empty_ones(admin, ams_user):
    def groups(user, field):
        result = call(user, "count_objects", object_type="dcim.device", group_by=field)
        return [(g.get("display"), g["value"] is None, g["count"]) for g in result["groups"]]

    assert groups(admin, "tenant") == [("Acme", False, 14)]
    assert groups(ams_user, "tenant") == groups(ams_user, "config_template") == [(None, True, 6)]
    assert groups(ams_user, "device_type__manufacturer") == [(None, True, 6)]
    assert sorted(groups(admin, "device_type__manufacturer")) == [("Cisco", False, 7), ("Juniper", False, 7)]
    assert groups(ams_user, "site") == [("AMS1", False, 6)]
    # Through a hidden step (the device type), a visible manufacturer is not shown either.
    ams_user = _granted(ams_user, Manufacturer, ["view"])
    assert groups(ams_user, "device_type__manufacturer") == [(None, True, 6)]
    ams_user = _granted(ams_user, DeviceType, ["view"])
    assert sorted(groups(ams_user, "device_type__manufacturer")) == [("Cisco", False, 3), ("Juniper", False, 3)]
    # The type of a generic relation tells that its object exists (here: interfaces this user may not
    # view): grouping by it is refused for users who may not view everything; who may, sees the types.
    ams_user = _granted(ams_user, IPAddress, ["view"])
    per_type = call(ams_user, "count_objects", object_type="ipam.ipaddress", group_by="assigned_object_type")
    assert per_type == {
        "error": "cannot group by 'assigned_object_type': it is part of a generic relation "
        "('assigned_object'), which may point to objects your permissions do not let you view"
    }
    per_type = call(admin, "count_objects", object_type="ipam.ipaddress", group_by="assigned_object_type")
    assert [(g.get("display"), g["count"]) for g in per_type["groups"]] == [("dcim.interface", 2)]


def test_search_never_returns_hidden_objects(admin, ams_user, nobody):
    assert {r["display"] for r in call(admin, "search", query="fra1")["results"]} >= {"FRA1", "fra1-leaf1"}
    assert call(ams_user, "search", query="fra1")["results"] == []
    assert call(ams_user, "search", query="10.2.0.1")["results"] == []  # no IP address permission at all
    ams = call(ams_user, "search", query="leaf")
    assert sorted(r["display"] for r in ams["results"]) == AMS_DEVICES and ams["count"] == 6
    assert call(nobody, "search", query="leaf") == {"query": "leaf", "count": 0, "has_more": False, "results": []}


def test_counts_and_groups_exclude_hidden_objects(admin, ams_user, nobody):
    assert call(ams_user, "count_objects", object_type="dcim.device")["count"] == 6
    per_site = call(ams_user, "count_objects", object_type="dcim.device", group_by="site")
    assert [(g["display"], g["count"]) for g in per_site["groups"]] == [("AMS1", 6)]
    per_status = call(ams_user, "count_objects", object_type="dcim.device", group_by="status")
    visible = Device.objects.restrict(ams_user, "view")
    assert {g["value"]: g["count"] for g in per_status["groups"]} == {
        s: visible.filter(status=s).count() for s in {d.status for d in visible}
    }
    assert call(admin, "count_objects", object_type="dcim.device", group_by="site")["count"] == 14
    assert call(nobody, "count_objects", object_type="dcim.device", group_by="site") == {
        "object_type": "dcim.device",
        "count": 0,
        "group_by": "site",
        "groups": [],
        "has_more": False,
    }


def _changed(result):
    return sorted((c["action"], c["object"]["display"]) for c in result["changes"])


def test_changelog_shows_only_changes_of_visible_objects(admin, ams_user, nobody):
    assert call(admin, "get_changelog", since="1h")["count"] == ObjectChange.objects.count() == 10
    # Amsterdam's device, and VLANs (viewable without constraints, so their deletions stay visible).
    # Not Frankfurt's devices (not even the deleted one: its constraint cannot be checked any more),
    # nor the webhook (no permission).
    assert _changed(call(ams_user, "get_changelog", since="1h", limit=50)) == [
        ("create", "temp (999)"),
        ("delete", "storage (200)"),
        ("delete", "temp (999)"),
        ("update", "ams1-leaf2"),
    ]
    assert call(nobody, "get_changelog", since="1h")["count"] == 0


def test_changelog_of_a_hidden_object_reads_like_a_missing_one(ams_user):
    hidden = Device.objects.get(name="fra1-leaf2").pk
    missing = Device.objects.order_by("-pk").first().pk + 1000
    first = call(ams_user, "get_changelog", object_type="dcim.device", object_id=hidden)
    second = call(ams_user, "get_changelog", object_type="dcim.device", object_id=missing)
    assert first == second and first["count"] == 0
    assert call(ams_user, "get_changelog", object_type="dcim.device", action="delete")["count"] == 0
    assert call(ams_user, "get_changelog", object_type="extras.webhook")["count"] == 0


def test_changes_of_a_hidden_objects_children_do_not_reveal_it(ams_user):
    """Changes of a visible interface name its (hidden) device as related object: asking for that
    device's changes still reads like asking for a device that does not exist."""
    hidden = Device.objects.get(name="fra1-leaf1")
    request = RequestFactory().get("/")
    request.user, request.id = get_user_model().objects.get(username="tools-admin"), uuid.uuid4()
    with event_tracking(request):
        interface = Interface.objects.get(device=hidden, name="et-0/0/0")
        interface.snapshot()
        interface.description = "uplink"
        interface.save()
    viewer = _granted(ams_user, Interface, ["view"])
    assert "uplink" in json.dumps(call(viewer, "get_changelog", object_type="dcim.interface"))
    missing = Device.objects.order_by("-pk").first().pk + 1000
    assert call(viewer, "get_changelog", object_type="dcim.device", object_id=hidden.pk) == call(
        viewer, "get_changelog", object_type="dcim.device", object_id=missing
    )
    # Who may view the device sees its interface's change with it.
    admin_view = call(request.user, "get_changelog", object_type="dcim.device", object_id=hidden.pk)
    assert "uplink" in json.dumps(admin_view)


def test_changelog_needs_netbox_changelog_permission_and_honours_its_constraints(nb, db):
    from django.contrib.auth import get_user_model

    viewer = get_user_model().objects.create_user("tools-viewer", password="x" * 12)
    grant(viewer, Device, ["view"])
    # Like NetBox's own change log views: object permission alone is not enough.
    assert call(viewer, "get_changelog", object_type="dcim.device")["count"] == 0
    grant(viewer, ObjectChange, ["view"], {"action": "delete"})
    viewer = get_user_model().objects.get(pk=viewer.pk)  # fresh permission cache
    assert _changed(call(viewer, "get_changelog", object_type="dcim.device")) == [("delete", "fra1-leaf5")]


@pytest.mark.parametrize(
    "tool, arguments",
    [
        ("query_objects", {"object_type": "dcim.device"}),
        ("count_objects", {"object_type": "dcim.device", "group_by": "site"}),
        ("search", {"query": "leaf"}),
        ("get_changelog", {}),
    ],
)
def test_superuser_sees_hidden_objects_that_others_do_not(admin, ams_user, tool, arguments):
    """The matrix can fail: the same call returns more for the superuser."""

    def size(result):
        return result.get("count", 0)

    assert size(call(admin, tool, **arguments)) > size(call(ams_user, tool, **arguments)) > 0
