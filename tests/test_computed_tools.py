"""The computed tools against NetBox's own answers: each result is compared with what NetBox's REST API
(available-ips, available-prefixes, available-vlans, available-asns, the interface trace) says for the same
object, called in the test; plus the edge cases and the permission rule (hidden occupants are "in use"
without identity, a hidden parent is missing, a trace stops at a hidden hop).
"""

import ipaddress
from decimal import Decimal

import pytest
from circuits.models import Circuit, CircuitTermination, CircuitType, Provider
from dcim.models import (
    Cable,
    Device,
    DeviceRole,
    DeviceType,
    FrontPort,
    Interface,
    Manufacturer,
    PortMapping,
    Rack,
    RackReservation,
    RearPort,
    Site,
)
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.backends.postgresql.psycopg_any import NumericRange
from django.test.utils import CaptureQueriesContext
from ipam.models import ASN, RIR, VLAN, VRF, ASNRange, IPAddress, IPRange, Prefix, VLANGroup
from netaddr import IPNetwork
from rest_framework.test import APIClient

from netbox_chatbox.tools import TOOLS, run_tool
from netbox_chatbox.tools.computed.utilization import utilizations
from tests.conftest import grant

pytestmark = pytest.mark.xdist_group("computed-data")


def call(user, tool, **arguments):
    return run_tool(tool, arguments, user)


def _build():
    User = get_user_model()
    admin = User.objects.create_user("computed-admin", password="x" * 12, is_superuser=True)
    limited = User.objects.create_user("computed-limited", password="x" * 12)
    # The constrained user sees every parent but only some occupants.
    grant(limited, Prefix, ["view"], {"prefix__net_contained_or_equal": "10.0.0.0/8"}, name="lim-prefix")
    grant(limited, IPAddress, ["view"], {"status": "active"}, name="lim-ip")
    grant(limited, IPRange, ["view"], name="lim-range")
    grant(limited, VLANGroup, ["view"], name="lim-vg")
    grant(limited, VLAN, ["view"], {"vid__lt": 150}, name="lim-vlan")
    grant(limited, ASNRange, ["view"], name="lim-asnrange")
    grant(limited, ASN, ["view"], {"asn__lt": 64520}, name="lim-asn")
    grant(limited, Rack, ["view"], name="lim-rack")
    grant(limited, Site, ["view"], name="lim-site")
    grant(limited, Device, ["view"], {"name__startswith": "vis-"}, name="lim-device")
    grant(limited, Interface, ["view"], name="lim-if")
    grant(limited, FrontPort, ["view"], name="lim-fp")
    grant(limited, RearPort, ["view"], name="lim-rp")
    grant(limited, Cable, ["view"], name="lim-cable")

    site = Site.objects.create(name="AMS1", slug="ams1")
    # IP space: a container with nested children (one outside the user's view), a /24 with a populated
    # range, a full /30, a pool, a prefix marked utilized, IPv6.
    Prefix.objects.create(prefix="10.0.0.0/8", status="container")
    Prefix.objects.create(prefix="10.1.0.0/16", status="container")
    lan = Prefix.objects.create(prefix="10.1.2.0/24", status="active", scope=site)
    Prefix.objects.create(prefix="10.2.0.0/16", status="reserved")
    Prefix.objects.create(prefix="192.168.99.0/24", status="active")  # outside the user's view
    for last, status in ((1, "active"), (2, "active"), (5, "reserved"), (9, "active")):
        IPAddress.objects.create(address=f"10.1.2.{last}/24", status=status, dns_name=f"host{last}.example.net")
    IPRange.objects.create(
        start_address=IPNetwork("10.1.2.100/24"), end_address=IPNetwork("10.1.2.150/24"), mark_populated=True
    )
    full = Prefix.objects.create(prefix="10.9.9.0/30", status="active")
    IPAddress.objects.create(address="10.9.9.1/30", status="active")
    IPAddress.objects.create(address="10.9.9.2/30", status="active")
    pool = Prefix.objects.create(prefix="10.8.0.0/29", status="active", is_pool=True)
    IPAddress.objects.create(address="10.8.0.0/29", status="active")
    utilized = Prefix.objects.create(prefix="10.7.0.0/24", status="active", mark_utilized=True)
    v6 = Prefix.objects.create(prefix="2001:db8:1::/64", status="active")
    IPAddress.objects.create(address="2001:db8:1::1/64", status="active")
    IPAddress.objects.create(address="2001:db8:1::10/64", status="reserved")
    grant(limited, Prefix, ["view"], {"prefix": "2001:db8:1::/64"}, name="lim-v6")

    group = VLANGroup.objects.create(
        name="AMS1 VLANs", slug="ams1-vlans", vid_ranges=[NumericRange(100, 200), NumericRange(300, 311)]
    )
    for vid in (100, 101, 150, 199):
        VLAN.objects.create(vid=vid, name=f"v{vid}", group=group)

    rir = RIR.objects.create(name="RFC 6996", slug="rfc-6996", is_private=True)
    asn_range = ASNRange.objects.create(name="Private", slug="private", rir=rir, start=64512, end=64600)
    for asn in (64512, 64513, 64520, 64600):
        ASN.objects.create(asn=asn, rir=rir)

    # A rack with a full-depth device, half-depth devices on each face, a reservation and a hidden device.
    rack = Rack.objects.create(name="R3", site=site, u_height=42)
    maker = Manufacturer.objects.create(name="Acme", slug="acme")
    deep2 = DeviceType.objects.create(manufacturer=maker, model="Deep 2U", slug="deep-2u", u_height=2)
    half1 = DeviceType.objects.create(
        manufacturer=maker, model="Half 1U", slug="half-1u", u_height=1, is_full_depth=False
    )
    panel = DeviceType.objects.create(manufacturer=maker, model="Panel", slug="panel", u_height=0)
    role = DeviceRole.objects.create(name="Core", slug="core")

    def device(name, **kwargs):
        return Device.objects.create(name=name, site=site, role=role, device_type=kwargs.pop("type", panel), **kwargs)

    device("vis-deep", rack=rack, position=1, face="front", type=deep2)
    device("vis-front", rack=rack, position=10, face="front", type=half1)
    device("vis-rear", rack=rack, position=10, face="rear", type=half1)
    device("hidden-box", rack=rack, position=30, face="front", type=deep2)
    user_admin = admin
    reservation = RackReservation(rack=rack, units=[20, 21], user=user_admin, description="for the new firewall")
    reservation.full_clean()
    reservation.save()

    # A trace: vis-a eth0 → patch panel PP1 front 1 / rear 1 → circuit CID-1 A/Z → PP2 rear 1 / front 1 → vis-b eth0
    a, b = device("vis-a"), device("vis-b")
    pp1, pp2 = device("vis-pp1"), device("vis-pp2")
    hidden = device("hidden-sw")
    eth_a = Interface.objects.create(device=a, name="eth0", type="1000base-t")
    eth_b = Interface.objects.create(device=b, name="eth0", type="1000base-t")
    eth_a1 = Interface.objects.create(device=a, name="eth1", type="1000base-t")
    eth_h = Interface.objects.create(device=hidden, name="ge-0/0/1", type="1000base-t")
    ports = {}
    for pp in (pp1, pp2):
        rear = RearPort.objects.create(device=pp, name="rear1", type="8p8c")
        front = FrontPort.objects.create(device=pp, name="front1", type="8p8c")
        PortMapping.objects.create(
            device=pp, front_port=front, front_port_position=1, rear_port=rear, rear_port_position=1
        )
        ports[pp.name] = (front, rear)
    provider = Provider.objects.create(name="Carrier", slug="carrier")
    ctype = CircuitType.objects.create(name="Transit", slug="transit")
    circuit = Circuit.objects.create(cid="CID-1", provider=provider, type=ctype)
    ct_a = CircuitTermination.objects.create(circuit=circuit, termination=site, term_side="A")
    ct_z = CircuitTermination.objects.create(circuit=circuit, termination=site, term_side="Z")
    for a_end, b_end in (
        (eth_a, ports["vis-pp1"][0]),
        (ports["vis-pp1"][1], ct_a),
        (ct_z, ports["vis-pp2"][1]),
        (ports["vis-pp2"][0], eth_b),
        (eth_a1, eth_h),
    ):
        Cable(a_terminations=[a_end], b_terminations=[b_end]).save()
    racker = User.objects.create_user("computed-racker", password="x" * 12)
    grant(racker, Rack, ["view"], name="racker-rack")
    return {
        "admin": admin,
        "limited": limited,
        "racker": racker,
        "lan": lan,
        "full": full,
        "pool": pool,
        "utilized": utilized,
        "v6": v6,
        "group": group,
        "asn_range": asn_range,
        "rack": rack,
        "eth_a": eth_a,
        "eth_a1": eth_a1,
        "circuit": circuit,
    }


@pytest.fixture(scope="module")
def nb(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build()
        transaction.set_rollback(True)


@pytest.fixture
def admin(nb, db):
    return nb["admin"]


@pytest.fixture
def limited(nb, db):
    return nb["limited"]


def rest(user, path):
    client = APIClient()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.json()


def expand(ranges, limit):
    """The first ``limit`` addresses of {first, last} ranges (only to compare with NetBox's list)."""
    out = []
    for r in ranges:
        first, last = ipaddress.ip_address(r["first"]), ipaddress.ip_address(r["last"])
        while first <= last and len(out) < limit:
            out.append(str(first))
            first += 1
    return out


# ------------------------------------------------------------------------------------------------
# Against NetBox's REST API


@pytest.mark.parametrize("key", ["lan", "full", "pool", "utilized", "v6"])
def test_available_ips_match_netbox_rest(nb, admin, key):
    prefix = Prefix.objects.get(pk=nb[key].pk)
    result = call(admin, "available_ips", prefix_id=prefix.pk, limit=50)
    netbox = rest(admin, f"/api/ipam/prefixes/{prefix.pk}/available-ips/?limit=1000")
    addresses = [entry["address"].split("/")[0] for entry in netbox]
    assert expand(result["available_ranges"], 1000) == addresses
    assert result["available_count"] == len(addresses) or len(addresses) == 1000
    assert result["first_available"] == (netbox[0]["address"] if netbox else None)
    assert result["utilization_percent"] == round(prefix.get_utilization(), 1)
    assert result["object"]["url"] == prefix.get_absolute_url()


def test_available_ips_edge_cases(nb, admin):
    lan = call(admin, "available_ips", prefix="10.1.2.0/24")
    # .1 .2 .5 .9 are taken, .100-.150 is a populated range, .0 and .255 are not usable.
    assert lan["available_ranges"][:3] == [
        {"first": "10.1.2.3", "last": "10.1.2.4", "size": 2},
        {"first": "10.1.2.6", "last": "10.1.2.8", "size": 3},
        {"first": "10.1.2.10", "last": "10.1.2.99", "size": 90},
    ]
    assert lan["available_count"] == 254 - 4 - 51
    assert lan["child_ranges"]["results"][0]["mark_populated"] is True
    full = call(admin, "available_ips", prefix="10.9.9.0/30")
    assert full["available_count"] == 0 and full["available_ranges"] == [] and full["first_available"] is None
    assert full["utilization_percent"] == 100.0
    pool = call(admin, "available_ips", prefix="10.8.0.0/29")  # a pool: network and broadcast are usable
    assert pool["usable"] == {"first": "10.8.0.0", "last": "10.8.0.7", "size": 8}
    assert pool["first_available"] == "10.8.0.1/29"
    utilized = call(admin, "available_ips", prefix="10.7.0.0/24")
    assert utilized["utilization_percent"] == 100.0 and "marked utilized" in utilized["note"]
    v6 = call(admin, "available_ips", prefix="2001:db8:1::/64", limit=2)
    assert v6["available_ranges"] == [
        {"first": "2001:db8:1::2", "last": "2001:db8:1::f", "size": 14},
        {"first": "2001:db8:1::11", "last": "2001:db8:1:0:ffff:ffff:ffff:ffff", "size": 2**64 - 17},
    ]
    assert v6["available_count"] == 2**64 - 3
    assert len(str(v6)) < 3000  # summarised, never expanded


def test_available_prefixes_match_netbox_rest(nb, admin):
    container = Prefix.objects.get(prefix="10.0.0.0/8")
    result = call(admin, "available_prefixes", prefix="10.0.0.0/8", prefix_length=24, limit=50)
    netbox = rest(admin, f"/api/ipam/prefixes/{container.pk}/available-prefixes/?limit=1000")
    assert [p["prefix"] for p in result["available_prefixes"]] == [p["prefix"] for p in netbox]
    # Free /24s: all but 10.1.0.0/16 and 10.2.0.0/16 (the nested 10.1.2.0/24 lies inside 10.1/16), 10.7.0.0/24
    # and the /24s holding 10.8.0.0/29 and 10.9.9.0/30.
    assert result["blocks"]["count"] == 2**16 - 2 * 256 - 3
    assert result["blocks"]["first"][:2] == ["10.0.0.0/24", "10.0.1.0/24"]
    assert result["blocks"]["has_more"] is True
    assert result["child_prefixes"]["count"] == Prefix.objects.filter(prefix__net_contained="10.0.0.0/8").count()


def test_prefix_utilization_matches_netbox(nb, admin):
    result = call(admin, "prefix_utilization", filters={"within": "10.0.0.0/8"}, min_percent=50)
    expected = sorted(
        (
            (round(p.get_utilization(), 1), str(p.prefix))
            for p in Prefix.objects.filter(prefix__net_contained="10.0.0.0/8")
            if p.get_utilization() >= 50
        ),
        key=lambda row: (-row[0], row[1]),
    )
    assert [(r["utilization_percent"], r["prefix"]) for r in result["results"]] == expected
    assert result["results"][0]["utilization_percent"] == 100.0
    at_site = call(admin, "prefix_utilization", filters={"site": "ams1"})
    assert [r["prefix"] for r in at_site["results"]] == ["10.1.2.0/24"]


def test_batched_utilization_equals_netbox_for_every_prefix(nb, admin):
    """The few-query computation against Prefix.get_utilization() itself, prefix by prefix: the sample data plus
    a VRF, nested and overlapping children, IP ranges marked utilized (overlapping, saturating), a /31, IPv6."""
    blue = VRF.objects.create(name="blue")
    Prefix.objects.create(prefix="10.1.0.0/16", status="container", vrf=blue)
    Prefix.objects.create(prefix="10.1.4.0/25", status="container", vrf=blue)
    Prefix.objects.create(prefix="10.1.4.0/24", status="active", vrf=blue)
    Prefix.objects.create(prefix="10.1.4.0/26", status="active", vrf=blue)
    Prefix.objects.create(prefix="10.1.2.0/26", status="active")
    Prefix.objects.create(prefix="10.3.3.0/31", status="active")
    Prefix.objects.create(prefix="2001:db8::/32", status="container")
    Prefix.objects.create(prefix="2001:db8:1::/112", status="reserved")
    for start, end, vrf in (
        ("10.1.4.10", "10.1.4.20", blue),
        ("10.1.4.15", "10.1.4.30", blue),
        ("10.3.3.0", "10.3.3.1", None),
    ):
        IPRange.objects.create(
            start_address=IPNetwork(f"{start}/24"), end_address=IPNetwork(f"{end}/24"), vrf=vrf, mark_utilized=True
        )
    for address, vrf in (
        ("10.1.4.5/24", blue),
        ("10.1.4.5/26", blue),  # the same host twice: counted once
        ("10.1.4.12/24", blue),  # inside a utilized range: counted once
        ("10.1.4.200/24", blue),
        ("10.1.4.201/24", None),  # global: not in the VRF's prefixes
        ("10.3.3.0/31", None),
        ("2001:db8:1::5/112", None),
    ):
        IPAddress.objects.create(address=address, vrf=vrf, status="active")
    prefixes = list(Prefix.objects.select_related("vrf"))  # as the tool loads them
    with CaptureQueriesContext(connection) as queries:
        batched = utilizations(prefixes)
    assert batched == {p.pk: p.get_utilization() for p in prefixes}
    # Child prefixes, utilized ranges, distinct hosts, and NetBox's own count for each of the two prefixes holding
    # a utilized range (NetBox: two or three per prefix).
    assert len(queries) == 5
    assert sorted(set(batched.values())) != [100]
    result = call(admin, "prefix_utilization", limit=len(prefixes))
    assert {r["id"]: r["utilization_percent"] for r in result["results"]} == {
        p.pk: round(p.get_utilization(), 1) for p in prefixes
    }


def test_available_vlans_match_netbox_rest(nb, admin):
    group = nb["group"]
    result = call(admin, "available_vlans", group="ams1-vlans")
    netbox = [v["vid"] for v in rest(admin, f"/api/ipam/vlan-groups/{group.pk}/available-vlans/?limit=1000")]
    expanded = [vid for r in result["available_ranges"] for vid in range(r["first"], r["last"] + 1)]
    assert expanded == netbox
    assert result["available_ranges"][0] == {"first": 102, "last": 149, "size": 48}
    assert result["first_available"] == 102 and result["available_count"] == len(netbox)


def test_available_asns_match_netbox_rest(nb, admin):
    asn_range = nb["asn_range"]
    result = call(admin, "available_asns", range="private")
    netbox = [a["asn"] for a in rest(admin, f"/api/ipam/asn-ranges/{asn_range.pk}/available-asns/?limit=1000")]
    expanded = [n for r in result["available_ranges"] for n in range(r["first"], r["last"] + 1)]
    assert expanded == netbox
    assert result["first_available"] == 64514 and result["available_count"] == len(netbox)


def test_trace_matches_netbox_trace_through_patch_panels_and_a_circuit(nb, admin):
    eth_a = nb["eth_a"]
    result = call(admin, "trace_cable", device="vis-a", name="eth0")
    netbox = rest(admin, f"/api/dcim/interfaces/{eth_a.pk}/trace/")
    ours = [
        ([n["id"] for n in hop["near"]], [c["id"] for c in hop["cable"] or []], [f["id"] for f in hop["far"]])
        for hop in result["results"]
    ]
    theirs = [
        ([n["id"] for n in near], [cable["id"]] if cable else [], [f["id"] for f in far or []])
        for near, cable, far in netbox
    ]
    assert ours == theirs
    assert [hop["near"][0]["type"] for hop in result["results"]] == [
        "dcim.interface",
        "dcim.rearport",
        "circuits.circuittermination",
        "dcim.frontport",
    ]
    assert result["results"][-1]["far"][0]["parent"]["display"] == "vis-b"
    assert result["complete"] is True and "continues" not in result


def test_rack_space_half_depth_and_reservations(nb, admin):
    rack = Rack.objects.get(pk=nb["rack"].pk)
    result = call(admin, "rack_space", rack="R3", site="ams1")
    full_depth = result["free_units"]["full_depth"]
    # Taken: 1-2 (full depth), 10 (front and rear halves), 20-21 reserved, 30-31 (hidden device).
    assert full_depth["count"] == 42 - 2 - 1 - 2 - 2
    assert full_depth["ranges"] == [
        {"first": 3, "last": 9, "size": 7},
        {"first": 11, "last": 19, "size": 9},
        {"first": 22, "last": 29, "size": 8},
        {"first": 32, "last": 42, "size": 11},
    ]
    expected = [u for u in rack.get_available_units(u_height=1) if u == int(u) and u not in (20, 21)]
    assert full_depth["count"] == len(expected)
    # U10 holds a half-depth device on each face: not free on either; the full-depth U1-2 block both.
    assert result["free_units"]["front_only"] == full_depth
    assert result["utilization_percent"] == round(rack.get_utilization(), 1)
    assert result["reserved_units"][0]["description"] == "for the new firewall"
    two_u = call(admin, "rack_space", rack_id=rack.pk, u_height=2)
    assert two_u["fits"]["full_depth_positions"][:2] == [
        {"first": 3, "last": 8, "size": 6},
        {"first": 11, "last": 18, "size": 8},
    ]


def test_rack_space_free_units_per_face_and_height_as_netbox_finds_them(nb, admin):
    # R3 holds half-depth devices; R4 only a full-depth one (its faces agree). Heights of 1, 1.5 and 3 U.
    r3 = Rack.objects.get(pk=nb["rack"].pk)
    r4 = Rack.objects.create(name="R4", site=r3.site, u_height=12)
    Device.objects.create(
        name="vis-r4",
        site=r3.site,
        role=DeviceRole.objects.get(slug="core"),
        device_type=DeviceType.objects.get(slug="deep-2u"),
        rack=r4,
        position=5,
        face="rear",
    )

    def starts(runs):
        return [u for run in runs for u in range(run["first"], run["last"] + 1)]

    def netbox(rack, height, face):  # whole-U starts NetBox offers, without reserved units
        units, span = rack.get_available_units(u_height=height, rack_face=face), Decimal(max(height, 1))
        return sorted(u for u in units if u == int(u) and not any(u <= r < u + span for r in rack.get_reserved_units()))

    for rack in (r3, Rack.objects.get(pk=r4.pk)):
        free = call(admin, "rack_space", rack_id=rack.pk)["free_units"]
        for key, face in (("full_depth", None), ("front_only", "front"), ("rear_only", "rear")):
            expected = netbox(rack, 1, face)
            assert starts(free[key]["ranges"]) == expected and free[key]["count"] == len(expected)
        for height in (1.5, 3):
            fits = call(admin, "rack_space", rack_id=rack.pk, u_height=height)["fits"]
            assert starts(fits["full_depth_positions"]) == netbox(rack, height, None)
            assert starts(fits["front_positions"]) == netbox(rack, height, "front")
    assert starts(free["rear_only"]["ranges"]) == [1, 2, 3, 4, 7, 8, 9, 10, 11, 12]  # R4: U5-6 taken


def test_device_connections_and_config(nb, admin):
    result = call(admin, "device_connections", device="vis-a")
    rows = {row["display"]: row for row in result["results"]}
    assert rows["eth0"]["link_peers"][0]["parent"]["display"] == "vis-pp1"
    assert rows["eth0"]["connected_endpoints"][0]["parent"]["display"] == "vis-b"
    assert rows["eth1"]["connected_endpoints"][0]["parent"]["display"] == "hidden-sw"
    assert result["count"] == 2 and "has_more" not in result
    first = call(admin, "device_connections", device="vis-a", limit=1)
    assert first["count"] == 2 and first["has_more"] and [row["display"] for row in first["results"]] == ["eth0"]
    config = call(admin, "device_config", device="vis-a")
    assert config["config_context"] == {} and config["object"]["display"] == "vis-a"


# ------------------------------------------------------------------------------------------------
# The permission rule


def test_hidden_occupants_are_in_use_without_identity(nb, limited):
    lan = call(limited, "available_ips", prefix="10.1.2.0/24")
    admin_view = call(nb["admin"], "available_ips", prefix="10.1.2.0/24")
    assert lan["available_ranges"] == admin_view["available_ranges"]  # .5 is never offered
    assert [ip["address"] for ip in lan["in_use"]["results"]] == ["10.1.2.1/24", "10.1.2.2/24", "10.1.2.9/24"]
    assert lan["in_use"]["hidden_in_use"] == 1
    assert "10.1.2.5" not in str(lan) and "host5" not in str(lan)
    vlans = call(limited, "available_vlans", group_id=nb["group"].pk)
    assert [v["vid"] for v in vlans["in_use"]["results"]] == [100, 101]
    assert vlans["in_use"]["hidden_in_use"] == 2 and "v150" not in str(vlans)
    asns = call(limited, "available_asns", range_id=nb["asn_range"].pk)
    assert asns["in_use"]["hidden_in_use"] == 2 and asns["first_available"] == 64514
    rack = call(limited, "rack_space", rack="R3")
    assert "hidden-box" not in str(rack) and rack["object"]["site"] == "AMS1"
    assert call(nb["racker"], "rack_space", rack="R3")["object"]["site"] is None  # a hidden site is no name
    assert rack["hidden_in_use"] == [
        {"first": 30, "last": 31, "face": "front", "full_depth": True, "in_use": "by a device you may not view"}
    ]
    assert rack["free_units"] == call(nb["admin"], "rack_space", rack="R3")["free_units"]
    container = call(limited, "available_prefixes", prefix="10.0.0.0/8")
    assert "hidden_in_use" not in container["child_prefixes"]  # all of 10/8 is visible to this user
    assert "error" in call(limited, "available_prefixes", prefix="192.168.99.0/24")


def test_hidden_parent_reads_as_missing(nb, limited):
    hidden = call(limited, "available_ips", prefix="192.168.99.0/24")
    missing = call(limited, "available_ips", prefix="192.168.98.0/24")
    assert hidden == {"error": "no prefix matches prefix=192.168.99.0/24"}
    assert missing == {"error": "no prefix matches prefix=192.168.98.0/24"}
    assert call(limited, "available_ips", prefix="10.1.2.0/24", vrf="nope") == {
        "error": "no prefix matches prefix=10.1.2.0/24 in VRF 'nope'"
    }
    assert call(limited, "rack_space", rack="R3", site="fra1") == {"error": "no rack matches rack=R3 at site 'fra1'"}
    hidden_device = Device.objects.get(name="hidden-sw")
    assert call(limited, "device_connections", device_id=hidden_device.pk) == {
        "error": f"no device matches id {hidden_device.pk}"
    }
    assert call(limited, "trace_cable", device="hidden-sw", name="ge-0/0/1") == {
        "error": "no device matches name=hidden-sw"
    }


def test_trace_stops_at_the_first_hidden_hop(nb, limited):
    # The user may not view circuits: the path from vis-a eth0 stops before the circuit termination.
    result = call(limited, "trace_cable", device="vis-a", name="eth0")
    assert [hop["near"][0]["type"] for hop in result["results"]] == ["dcim.interface"]
    assert result["continues"] == "the path continues through objects you may not view"
    assert "CID-1" not in str(result) and "vis-b" not in str(result) and "complete" not in result
    to_hidden = call(limited, "trace_cable", id=nb["eth_a1"].pk)
    assert to_hidden["results"] == [] and "hidden-sw" not in str(to_hidden)
    connections = call(limited, "device_connections", device="vis-a")
    eth1 = next(row for row in connections["results"] if row["display"] == "eth1")
    assert "connected_endpoints" not in eth1  # its only end is hidden: missing, as if there were none
    assert "hidden-sw" not in str(connections)


def test_render_config_needs_netbox_render_permission(nb, limited):
    assert call(limited, "device_config", device="vis-a", render=True) == {
        "error": "you may not render configurations of this device (NetBox's render_config permission)"
    }


def test_registry_has_the_computed_tools_with_examples():
    for name in (
        "available_ips",
        "available_prefixes",
        "prefix_utilization",
        "available_vlans",
        "available_asns",
        "rack_space",
        "trace_cable",
        "device_connections",
        "device_config",
    ):
        assert "Example" in TOOLS[name].description and len(TOOLS[name].description) < 600
    assert TOOLS["available_ips"].summarize({"prefix": "10.1.2.0/24"}) == "finding free IPs in 10.1.2.0/24"
