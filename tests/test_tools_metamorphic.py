"""A hidden object reads exactly like a missing one, checked by mutation rather than by listing cases.

For users whose ObjectPermissions are constrained (granted through a group, with ``$user`` in a
constraint, and under the admin's ``excluded_models``/``excluded_fields``), tool calls are GENERATED
from the registry and each type's FilterSet: every filter and lookup variant, with values taken from
hidden objects, visible ones and nonexistent ones, plus fields, orderings, groupings, objects by id,
search and the change log. Then objects the user may NOT view are mutated (renamed, reordered, added,
deleted, re-tagged, their secrets changed), each mutation inside a savepoint that is rolled back, and
every answer must stay byte-identical. A difference is a leak: the answer told something about an
object the user may not view.

Calls are sampled per run: the seed is printed and ``CHATBOX_METAMORPHIC_SEED`` replays it;
``CHATBOX_METAMORPHIC_CALLS`` sets how many calls per user (default 60).
"""

import json
import os
import random
import uuid

import pytest
from circuits.models import Circuit, CircuitType, Provider
from core.models import ObjectChange, ObjectType
from dcim.models import (
    Cable,
    Device,
    DeviceRole,
    DeviceType,
    Interface,
    Location,
    MACAddress,
    Manufacturer,
    Rack,
    Region,
    Site,
    VirtualChassis,
)
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import RequestFactory
from extras.models import ConfigContext, Tag
from ipam.models import VLAN, IPAddress, Prefix
from netbox.context_managers import event_tracking
from netbox.registry import registry
from netbox.search.backends import search_backend
from tenancy.models import Tenant
from users.models import Group, ObjectPermission
from virtualization.models import Cluster, ClusterType, VirtualMachine, VMInterface

from netbox_chatbox.tools import TOOLS, run_tool
from netbox_chatbox.tools.filters import usable_filters
from netbox_chatbox.tools.types import get_object_type, object_types
from tests.test_tools import plugins_config

pytestmark = pytest.mark.xdist_group("tools-metamorphic")

SEED = int(os.environ.get("CHATBOX_METAMORPHIC_SEED") or random.SystemRandom().randrange(1 << 30))
CALLS = int(os.environ.get("CHATBOX_METAMORPHIC_CALLS") or 60)
SECRET = "s3cret-community-string"
# The types the fixture fills, whose calls are generated.
TYPES = (
    "dcim.site",
    "dcim.region",
    "dcim.location",
    "dcim.rack",
    "dcim.device",
    "dcim.interface",
    "dcim.cable",
    "dcim.macaddress",
    "dcim.virtualchassis",
    "dcim.manufacturer",
    "ipam.prefix",
    "ipam.ipaddress",
    "ipam.vlan",
    "tenancy.tenant",
    "extras.tag",
    "extras.configcontext",
    "virtualization.virtualmachine",
    "virtualization.cluster",
    "circuits.circuit",
    "circuits.provider",
)
# What the constrained users may view: visible objects are named "v…"/"*-vis", hidden ones "h…"/"*-hid".
CONSTRAINTS = {
    Site: {"slug__startswith": "v"},
    Region: {"slug__startswith": "v"},
    Location: {"slug__startswith": "v"},
    Rack: {"name__startswith": "v"},
    Device: {"site__slug__startswith": "v"},
    Interface: {"device__site__slug__startswith": "v"},
    Cable: {"label__startswith": "v"},
    MACAddress: {"description__startswith": "v"},
    VirtualChassis: {"name__startswith": "v"},
    Manufacturer: {"slug__startswith": "v"},
    DeviceType: None,
    DeviceRole: None,
    Prefix: {"status": "active"},
    IPAddress: {"status": "active"},
    VLAN: {"name__startswith": "v"},
    Tenant: {"slug__startswith": "v"},
    Tag: {"slug__startswith": "v"},
    ConfigContext: {"name__startswith": "v"},
    VirtualMachine: {"name__startswith": "v"},
    Cluster: {"name__startswith": "v"},
    ClusterType: None,
    VMInterface: {"virtual_machine__name__startswith": "v"},
    Circuit: {"cid__startswith": "v"},
    Provider: {"slug__startswith": "v"},
    CircuitType: None,
}


def _permission(name, model, constraints, users=(), groups=()):
    perm = ObjectPermission.objects.create(name=name, actions=["view"], constraints=constraints)
    perm.object_types.add(ObjectType.objects.get_for_model(model))
    perm.users.add(*users)
    perm.groups.add(*groups)


def _build():
    User = get_user_model()
    admin = User.objects.create_user("mm-admin", password="x" * 12, is_superuser=True)
    grouped = User.objects.create_user("mm-grouped", password="x" * 12)
    own = User.objects.create_user("mm-own", password="x" * 12)
    group = Group.objects.create(name="mm-operators")
    grouped.groups.add(group)
    for model, constraints in CONSTRAINTS.items():  # all granted through the group
        _permission(f"mm-{model._meta.label_lower}", model, constraints, groups=[group])
    # $user: the change log of one's own changes only, and the other users' group of permissions too.
    _permission("mm-own-changes", ObjectChange, {"user": "$user"}, users=[own])
    own.groups.add(group)
    _permission("mm-grouped-changes", ObjectChange, None, groups=[group])

    tags = {slug: Tag.objects.create(name=slug, slug=slug) for slug in ("vblue", "hred", "hgreen")}
    tenants = {slug: Tenant.objects.create(name=slug.upper(), slug=slug) for slug in ("vt", "ht")}
    regions = {"vr": Region.objects.create(name="vr", slug="vr")}
    regions["hr"] = Region.objects.create(name="hr", slug="hr", parent=regions["vr"])
    regions["vr2"] = Region.objects.create(name="vr2", slug="vr2", parent=regions["hr"])  # visible under hidden
    sites = {
        "va": Site.objects.create(name="va", slug="va", region=regions["vr2"], tenant=tenants["ht"], status="active"),
        "vb": Site.objects.create(name="vb", slug="vb", region=regions["hr"], tenant=tenants["vt"], status="active"),
        "ha": Site.objects.create(name="ha", slug="ha", region=regions["vr"], tenant=tenants["ht"], status="active"),
    }
    hloc = Location.objects.create(name="hloc", slug="hloc", site=sites["va"])
    vloc = Location.objects.create(name="vloc", slug="vloc", site=sites["va"], parent=hloc)
    vloc2 = Location.objects.create(name="vloc2", slug="vloc2", site=sites["va"])
    racks = [
        Rack.objects.create(name=name, site=sites["va"], location=location, status="active")
        for name, location in (("v-r1", vloc), ("v-r2", hloc), ("v-r3", vloc2))
    ]
    Rack.objects.create(name="h-r9", site=sites["ha"], status="active")
    makers = {slug: Manufacturer.objects.create(name=slug.upper(), slug=slug) for slug in ("vm", "hm")}
    types = [
        DeviceType.objects.create(manufacturer=makers["vm"], model="VX1", slug="vx1"),
        DeviceType.objects.create(manufacturer=makers["hm"], model="HX2", slug="hx2"),
    ]
    role = DeviceRole.objects.create(name="leaf", slug="leaf")
    hvc = VirtualChassis.objects.create(name="hvc", domain="hidden.example")
    VirtualChassis.objects.create(name="vvc")
    devices = {}
    for name, site, dtype, extra in (
        ("va-1", "va", 0, {"rack": racks[0], "tenant": tenants["ht"]}),
        (None, "va", 1, {"rack": racks[1]}),  # unnamed: NetBox displays its manufacturer and type
        ("va-3", "va", 0, {"virtual_chassis": hvc, "vc_position": 1, "rack": racks[2]}),
        ("vb-1", "vb", 1, {"tenant": tenants["vt"]}),
        ("ha-1", "ha", 0, {"tenant": tenants["vt"]}),
        ("ha-2", "ha", 1, {}),
    ):
        devices[name or "va-2"] = Device.objects.create(
            name=name,
            site=sites[site],
            device_type=types[dtype],
            role=role,
            status="active",
            serial=f"SN-{name}",
            **extra,
        )
    for device in devices.values():
        device.tags.add(tags["vblue"], tags["hred"])
    interfaces = {
        f"{d}/{i}": Interface.objects.create(device=devices[d], name=f"et{i}", type="10gbase-x-sfpp")
        for d in devices
        for i in range(2)
    }
    Cable(a_terminations=[interfaces["va-1/0"]], b_terminations=[interfaces["vb-1/0"]], label="vcable").save()
    Cable(a_terminations=[interfaces["va-1/1"]], b_terminations=[interfaces["ha-1/0"]], label="hcable").save()
    Cable(a_terminations=[interfaces["vb-1/1"]], b_terminations=[interfaces["ha-1/1"]], label="vcable2").save()
    for key, description in (("va-1/0", "vmac"), ("va-1/1", "hmac"), ("ha-1/0", "vmac-on-hidden")):
        mac = MACAddress.objects.create(
            mac_address=f"00:00:00:00:{len(description):02x}:{key[-1]}1",
            assigned_object=interfaces[key],
            description=description,
        )
        Interface.objects.filter(pk=interfaces[key].pk).update(primary_mac_address=mac)  # keeps the cable
    ips = {}
    for address, key, status in (
        ("10.1.0.1/24", "va-1/0", "active"),
        ("10.1.0.2/24", "va-1/0", "reserved"),
        ("10.1.0.3/24", "va-3/0", "reserved"),
        ("10.9.0.1/24", "ha-1/0", "active"),
    ):
        ips[address] = IPAddress.objects.create(
            address=address,
            assigned_object=interfaces[key],
            status=status,
            tenant=tenants["ht"],
            dns_name=f"dns-{status}",
        )
    devices["va-3"].primary_ip4 = ips["10.1.0.3/24"]
    devices["va-3"].save()
    for prefix, status, scope in (
        ("10.0.0.0/8", "reserved", None),
        ("10.1.0.0/16", "active", sites["va"]),
        ("10.1.1.0/24", "reserved", sites["va"]),
        ("10.1.2.0/24", "active", None),
        ("10.2.0.0/16", "active", sites["ha"]),
        ("10.3.0.0/16", "reserved", sites["vb"]),
    ):
        Prefix.objects.create(prefix=prefix, status=status, scope=scope, tenant=tenants["ht"])
    VLAN.objects.create(vid=100, name="v-servers", site=sites["va"], tenant=tenants["ht"], status="active")
    VLAN.objects.create(vid=200, name="h-storage", site=sites["ha"], status="active")
    ctype = ClusterType.objects.create(name="kvm", slug="kvm")
    clusters = {
        name: Cluster.objects.create(name=name, type=ctype, scope=sites[site])
        for name, site in (("v-cl", "ha"), ("h-cl", "va"))
    }
    for name, cluster in (("v-vm1", "v-cl"), ("v-vm2", "h-cl"), ("h-vm3", "v-cl")):
        VirtualMachine.objects.create(
            name=name, cluster=clusters[cluster], site=clusters[cluster].scope, tenant=tenants["ht"], status="active"
        )
    providers = {slug: Provider.objects.create(name=slug, slug=slug) for slug in ("vp", "hp")}
    ctypes = CircuitType.objects.create(name="transit", slug="transit")
    for cid, provider in (("v-c1", "hp"), ("v-c2", "vp"), ("h-c3", "vp")):
        Circuit.objects.create(cid=cid, provider=providers[provider], type=ctypes, tenant=tenants["ht"])
    for name, weight in (("v-cc", 100), ("h-cc", 200)):
        ConfigContext.objects.create(
            name=name, weight=weight, data={"ntp": name, "snmp_community": SECRET, "nested": {"password": SECRET}}
        )
    # Change log: NetBox's own change logging, by the admin and by the $user-constrained user.
    request = RequestFactory().get("/")
    request.id = uuid.uuid4()
    for author in (admin, own):
        request.user = author
        with event_tracking(request):
            for device in Device.objects.filter(pk__in=[d.pk for d in devices.values()]):
                device.snapshot()
                device.description = f"changed by {author.username}"
                device.tenant = tenants["ht"] if device.tenant_id == tenants["vt"].pk else tenants["vt"]
                device.save()
                device.tags.add(tags["hgreen"])
            prefix = Prefix.objects.get(prefix="10.1.0.0/16")
            prefix.snapshot()
            prefix.scope = sites["vb"]
            prefix.save()
    for indexer in registry["search"].values():
        search_backend.cache(indexer.model.objects.all(), remove_existing=False)
    return {"admin": admin, "grouped": grouped, "own": own}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build()
        transaction.set_rollback(True)


# ---------------------------------------------------------------------------------------------
# Generating calls


def _values_of(model, user, rng):
    """Objects to take filter values from: (hidden, visible), asked once per model and user."""
    key = (model, user.pk)
    if key not in _VALUES:
        _VALUES[key] = _objects_of(model, user)
    return _VALUES[key]


_VALUES = {}


def _objects_of(model, user):
    everything = list(model.objects.all()[:50])
    shown = (
        set(model.objects.restrict(user, "view").values_list("pk", flat=True))
        if hasattr(model.objects.all(), "restrict")
        else {o.pk for o in everything}
    )
    hidden = [o for o in everything if o.pk not in shown]
    visible = [o for o in everything if o.pk in shown]
    return hidden, visible


def _filter_value(info, name, filt, user, rng):
    """One value for filter ``name``: from a hidden object when there is one, else visible or nonexistent."""
    from netbox_chatbox.tools.filters import MODEL_CHOICE_FILTERS, filter_hint

    kind = rng.random()
    if isinstance(filt, MODEL_CHOICE_FILTERS):
        model = filt.queryset.model
        hidden, visible = _values_of(model, user, rng)
        field = filt.extra.get("to_field_name") or "pk"
        pool = hidden if kind < 0.6 and hidden else visible if kind < 0.85 and visible else None
        if pool is None:
            return 987654 if field == "pk" else "nonexistent"
        value = getattr(rng.choice(pool), field)
        return value if isinstance(value, int) else str(value)
    try:
        hint = filter_hint(filt)
    except Exception:
        hint = "text"
    if hint.startswith("choice: "):
        return rng.choice(hint[len("choice: ") :].split("|"))
    if hint == "boolean":
        return rng.choice([True, False])
    if hint == "number":
        return rng.choice([1, 2, 100, 987654])
    if hint == "date":
        return "2020-01-01"
    hidden, visible = _values_of(info.model, user, rng)
    texts = [str(o) for o in hidden] + [
        "hcable",
        "hmac",
        "10.1.0.2",
        "10.1.0.3",
        "00:00:00:00:04:11",
        SECRET,
        "SN-ha-1",
        "hred",
        "ht",
        "hr",
        "hloc",
        "HM",
        "h-cc",
        "nonexistent",
    ]
    return rng.choice(texts + [str(o) for o in visible][:3])


def generate_calls(user, rng, count):
    calls = []
    for label in [label for label in TYPES if label in object_types()]:
        info = get_object_type(label)
        fields = [f for f in info.fields if f != "config_context"]
        hidden, visible = _values_of(info.model, user, rng)
        calls.append(("query_objects", {"object_type": label, "limit": 50}))
        calls.append(("query_objects", {"object_type": label, "fields": fields, "limit": 50}))
        calls.append(("count_objects", {"object_type": label}))
        for obj in hidden + visible[:3]:
            calls.append(("get_object", {"object_type": label, "id": obj.pk}))
            calls.append(("get_changelog", {"object_type": label, "object_id": obj.pk}))
        calls.append(("get_object", {"object_type": label, "id": 987654}))
        calls.append(("get_changelog", {"object_type": label}))
        concrete = [f.name for f in info.model._meta.concrete_fields if f.name in info.fields or f.is_relation]
        for name in concrete:
            calls.append(("count_objects", {"object_type": label, "group_by": name}))
            calls.append(
                ("query_objects", {"object_type": label, "ordering": [rng.choice(["", "-"]) + name], "limit": 50})
            )
        filters = usable_filters(info.filterset(queryset=info.model.objects.none()))
        for name, filt in filters.items():
            value = _filter_value(info, name, filt, user, rng)
            calls.append(
                (
                    "query_objects",
                    {"object_type": label, "filters": {name: value}, "limit": 50, "fields": list(info.brief_fields)},
                )
            )
            calls.append(("count_objects", {"object_type": label, "filters": {name: value}}))
        calls.append(("describe_object_type", {"object_type": label}))
        calls += _schema_calls(label, hidden + visible[:2])
    for query in ("hcable", "hmac", "10.1.0.2", "00:00:00", "ha-1", "HM", "hred", "v", "h-", SECRET, "SN-"):
        calls.append(("search", {"query": query}))
    calls.append(("get_changelog", {}))
    calls.append(("list_object_types", {}))
    assert KNOWN <= {name for name, _ in calls}, "every tool in the registry is exercised"
    print("[metamorphic] tools without generated calls:", sorted(set(TOOLS) - {name for name, _ in calls}))
    rng.shuffle(calls)
    # Always keep one of each tool, then sample.
    first = {}
    for call in calls:
        first.setdefault(call[0], call)
    rest = [c for c in calls if c not in first.values()]
    return list(first.values()) + rest[: max(0, count - len(first))], len(calls)


KNOWN = {
    "list_object_types",
    "describe_object_type",
    "query_objects",
    "get_object",
    "search",
    "count_objects",
    "get_changelog",
}


def _schema_calls(label, objects):
    """Calls of the registry's other tools, built from their input schemas: an object type, ids of hidden
    and visible objects, and text from hidden objects for string arguments."""
    calls = []
    for name, tool in TOOLS.items():
        if name in KNOWN:
            continue
        properties = tool.input_schema.get("properties", {})
        required = set(tool.input_schema.get("required", ()))
        for obj in objects or [None]:
            arguments = {}
            for key, spec in properties.items():
                if key == "object_type":
                    arguments[key] = label
                elif spec.get("type") == "integer" and key.endswith("id") and obj is not None:
                    arguments[key] = obj.pk
                elif spec.get("type") == "string" and key in required and obj is not None:
                    arguments[key] = str(obj)
            if required <= arguments.keys():
                calls.append((name, arguments))
    return calls


# ---------------------------------------------------------------------------------------------
# Mutating hidden objects


def _hidden(model, user):
    allowed = model.objects.restrict(user, "view")
    return list(model.objects.exclude(pk__in=allowed.values("pk")))


def rename(user):
    """Rename hidden objects (their sort keys too): names, slugs, descriptions, labels, cids."""
    for model in CONSTRAINTS:
        for obj in _hidden(model, user):
            names = {f.name for f in model._meta.concrete_fields}
            for field in ("name", "label", "description", "cid", "comments", "dns_name", "serial", "domain"):
                if field in names and isinstance(getattr(obj, field), str) and getattr(obj, field):
                    setattr(obj, field, "aa-renamed-" + getattr(obj, field)[:40])
            if hasattr(obj, "slug") and obj.slug:
                obj.slug = "aa-" + obj.slug
            obj.save()


def retag(user):
    """Re-tag hidden objects and rename the hidden tag."""
    new = Tag.objects.create(name="hnew", slug="hnew")
    for model in CONSTRAINTS:
        if hasattr(model, "tags"):
            for obj in _hidden(model, user):
                obj.tags.set([new])
    Tag.objects.filter(slug="hred").update(name="hred-renamed")


def add(user):
    """Add hidden objects next to visible ones: children, parents, peers, counters."""
    site, tenant = Site.objects.get(slug="ha"), Tenant.objects.create(name="HNEW", slug="hnew")
    device = Device.objects.create(
        name="ha-new", site=site, device_type=DeviceType.objects.first(), role=DeviceRole.objects.first(), tenant=tenant
    )
    visible_if = Interface.objects.get(device__name="va-1", name="et0")
    IPAddress.objects.create(address="10.1.0.77/24", assigned_object=visible_if, status="reserved")
    MACAddress.objects.create(mac_address="00:00:00:00:aa:01", assigned_object=visible_if, description="hadded")
    Prefix.objects.create(prefix="10.1.3.0/24", status="reserved")
    Prefix.objects.create(prefix="10.0.0.0/12", status="reserved")
    Region.objects.create(name="hr-new", slug="hr-new", parent=Region.objects.get(slug="vr"))
    Location.objects.create(name="hloc-new", slug="hloc-new", site=Site.objects.get(slug="va"))
    VLAN.objects.create(vid=300, name="h-new", status="active")
    Cable(
        a_terminations=[Interface.objects.get(device__name="ha-2", name="et1")],
        b_terminations=[Interface.objects.create(device=device, name="et0", type="10gbase-x-sfpp")],
        label="hnew",
    ).save()
    ConfigContext.objects.create(name="h-new", weight=50, data={"ntp": "hidden"})


def delete(user):
    """Delete every hidden object that can go without taking a visible one along."""
    for model in reversed(list(CONSTRAINTS)):
        for obj in _hidden(model, user):
            try:
                with transaction.atomic():
                    before = _visible_world(user)
                    obj.delete()
                    if _visible_world(user) != before:
                        raise _Undo
            except Exception:  # protected, or it took visible objects along: keep it
                continue


class _Undo(Exception):
    pass


def secrets(user):
    """Change withheld values: secret keys of every config context, including visible ones."""
    for context in ConfigContext.objects.all():  # update(): only the secret changes, not last_updated
        data = {**context.data, "snmp_community": "changed-" + SECRET, "nested": {"password": "x"}}
        ConfigContext.objects.filter(pk=context.pk).update(data=data)


MUTATIONS = (rename, retag, add, delete, secrets)


def _visible_world(user):
    """The objects the user may view, as stored (a hidden object's deletion may rewrite a visible one)."""
    return {
        model: set(
            model.objects.restrict(user, "view").values_list(
                "pk", *(["last_updated"] if hasattr(model, "last_updated") else [])
            )
        )
        for model in CONSTRAINTS
    }


def _difference(old, new):
    at = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    start = max(0, at - 250)
    return f"  before …{old[start : at + 250]}\n  after  …{new[start : at + 250]}"


def answers(user, calls):
    return [json.dumps(run_tool(name, arguments, user), sort_keys=True, default=str) for name, arguments in calls]


def check_user(user, label, excluded=None):
    _VALUES.clear()
    seed = SEED + sum(map(ord, label))
    rng = random.Random(seed)
    calls, generated = generate_calls(user, rng, CALLS)
    print(
        f"\n[metamorphic] user {label}: seed {SEED} (CHATBOX_METAMORPHIC_SEED), {len(calls)} of {generated} "
        f"generated calls, {len(MUTATIONS)} mutations, {len(calls) * len(MUTATIONS)} checks"
    )
    before = answers(user, calls)
    assert sum('"error"' not in a for a in before) > len(calls) // 3, "most generated calls answer"
    world = _visible_world(user)
    leaks = []
    for mutation in MUTATIONS:
        sid = getattr(transaction, "savepoint_create", transaction.savepoint)()
        try:
            mutation(user)
            assert _visible_world(user) == world, f"{mutation.__name__} changed what {label} may view"
            after = answers(user, calls)
        finally:
            transaction.savepoint_rollback(sid)
        for (name, arguments), old, new in zip(calls, before, after, strict=True):
            if old != new:
                leaks.append(f"{mutation.__name__}: {name} {json.dumps(arguments)[:300]}\n{_difference(old, new)}")
    assert not leaks, f"{len(leaks)} answers changed when only hidden objects did (seed {SEED}):\n" + "\n".join(
        leaks[:15]
    )


def test_grouped_user_sees_no_trace_of_hidden_objects(world, db):
    check_user(world["grouped"], "grouped")


def test_user_token_constraints_see_no_trace_of_hidden_objects(world, db):
    check_user(world["own"], "own")


def test_excluded_models_and_fields_see_no_trace(world, db):
    """Excluded types and fields join the hidden objects: changing them changes nothing either."""
    with plugins_config(excluded_models=["ipam.vlan", "extras.configcontext"], excluded_fields=["serial"]):
        check_user(world["grouped"], "grouped-excluded")


# ---------------------------------------------------------------------------------------------
# Regression tests, one per leak class the mutation suite guards against (issue 15)


def call(user, name, **arguments):
    return run_tool(name, arguments, user)


def _get(user, model, fields, **lookup):
    return call(
        user, "get_object", object_type=model._meta.label_lower, id=model.objects.get(**lookup).pk, fields=fields
    )["object"]


def test_display_strings_name_no_hidden_relation(world, db):
    """An unnamed device displays its manufacturer, a virtual chassis member its chassis: not when hidden."""
    grouped, admin = world["grouped"], world["admin"]
    unnamed = Device.objects.get(name=None)
    assert _get(admin, Device, ["display"], pk=unnamed.pk)["display"] == f"HM HX2 ({unnamed.pk})"
    shown = _get(grouped, Device, ["display", "device_type"], pk=unnamed.pk)
    assert "HM" not in shown["display"] and shown["device_type"]["display"] == "HX2"
    member = Device.objects.create(
        name=None,
        site=Site.objects.get(slug="va"),
        role=DeviceRole.objects.first(),
        device_type=DeviceType.objects.get(slug="vx1"),
        virtual_chassis=VirtualChassis.objects.get(name="hvc"),
        vc_position=2,
    )
    assert _get(admin, Device, ["display"], pk=member.pk)["display"] == "hvc:2"
    shown = _get(grouped, Device, ["display", "virtual_chassis", "vc_position"], pk=member.pk)
    assert "hvc" not in shown["display"] and shown["virtual_chassis"] is None
    assert "hvc" not in json.dumps(call(grouped, "search", query="VX1"))


def test_denormalised_values_come_only_from_visible_objects(world, db):
    grouped, admin = world["grouped"], world["admin"]
    fields = [
        "mac_address",
        "primary_mac_address",
        "count_ipaddresses",
        "cable",
        "link_peers",
        "link_peers_type",
        "connected_endpoints",
        "connected_endpoints_type",
        "connected_endpoints_reachable",
    ]
    hidden_mac = _get(grouped, Interface, fields, device__name="va-1", name="et1")  # hidden MAC and cable
    assert _get(admin, Interface, fields, device__name="va-1", name="et1")["mac_address"] == "00:00:00:00:04:11"
    assert {k: hidden_mac[k] for k in fields} == {
        "mac_address": None,
        "primary_mac_address": None,
        "count_ipaddresses": 0,
        "cable": None,
        "link_peers": [],
        "link_peers_type": None,
        "connected_endpoints": None,
        "connected_endpoints_type": None,
        "connected_endpoints_reachable": False,
    }
    reachable = {"device__name": "va-1", "name": "et1"}  # alone: the path is loaded for it too
    assert _get(admin, Interface, ["connected_endpoints_reachable"], **reachable)["connected_endpoints_reachable"]
    assert not _get(grouped, Interface, ["connected_endpoints_reachable"], **reachable)["connected_endpoints_reachable"]
    two_ips = _get(grouped, Interface, ["count_ipaddresses"], device__name="va-1", name="et0")
    assert (
        two_ips["count_ipaddresses"]
        == 1
        == _get(admin, Interface, ["count_ipaddresses"], device__name="va-1", name="et0")["count_ipaddresses"] - 1
    )
    # A prefix's depth and child count are computed over every prefix: withheld from who may not view all.
    prefix = {"prefix": "10.1.0.0/16"}
    assert _get(admin, Prefix, ["_depth", "children"], **prefix) == {
        **_get(admin, Prefix, ["_depth", "children"], **prefix),
        "_depth": 1,
        "children": 2,
    }
    shown = _get(grouped, Prefix, ["_depth", "children"], **prefix)
    assert shown["_depth"] is None and shown["children"] is None


def test_filters_that_read_through_hidden_objects_are_refused_or_match_nothing(world, db):
    grouped = world["grouped"]

    def count(object_type, **filters):
        return call(grouped, "count_objects", object_type=object_type, filters=filters)

    hidden_site = Site.objects.get(slug="ha").pk
    assert count("dcim.cable", site_id=hidden_site) == count("dcim.cable", site_id=987654)
    assert "error" in count("dcim.device", mac_address="00:00:00:00:04:11")
    assert count("dcim.device", q="10.1.0.3")["count"] == 0  # va-3's hidden primary IP
    assert count("dcim.device", q="va-3")["count"] == 1  # its own name still matches
    assert count("dcim.device", has_primary_ip="true") == {
        "error": "filter 'has_primary_ip' cannot be used on dcim.device: it reads ipam.ipaddress objects, and "
        "your permissions do not let you view all of them"
    }
    assert "generic relation" in count("ipam.prefix", scope_id=hidden_site)["error"]
    assert "error" in count("ipam.prefix", depth=1) and "error" in count("dcim.site", region="vr")
    # The admin may use them all.
    for filters in ({"mac_address": "00:00:00:00:04:11"}, {"has_primary_ip": "true"}, {"scope_id": hidden_site}):
        assert "error" not in call(
            world["admin"],
            "count_objects",
            object_type="dcim.device" if "scope_id" not in filters else "ipam.prefix",
            filters=filters,
        )


def test_generic_relation_ids_of_hidden_objects_are_empty(world, db):
    grouped = world["grouped"]
    on_hidden = _get(grouped, Prefix, ["scope_id", "scope_type"], prefix="10.2.0.0/16")
    assert (on_hidden["scope_id"], on_hidden["scope_type"]) == (None, None)
    assert _get(grouped, Prefix, ["scope_type"], prefix="10.1.0.0/16")["scope_type"] == "dcim.site"  # site vb
    assert "error" in call(grouped, "count_objects", object_type="ipam.prefix", group_by="scope_id")


def test_change_log_diffs_name_no_hidden_tag_or_id(world, db):
    grouped, admin = world["grouped"], world["admin"]
    device = Device.objects.get(name="va-1")

    def changes(user):
        return call(user, "get_changelog", object_type="dcim.device", object_id=device.pk)["changes"]

    hidden_tenant = Tenant.objects.get(slug="ht").pk

    def tenants(found):
        return {c["changes"]["tenant"][side] for c in found if "tenant" in c["changes"] for side in ("before", "after")}

    everything = changes(admin)
    assert "hgreen" in json.dumps(everything) and hidden_tenant in tenants(everything)
    shown = changes(grouped)
    assert shown and "hgreen" not in json.dumps(shown) and hidden_tenant not in tenants(shown)


def test_default_order_follows_only_visible_data(world, db):
    grouped = world["grouped"]

    def racks():
        return [r["display"] for r in call(grouped, "query_objects", object_type="dcim.rack")["results"]]

    before = racks()
    for name in ("aaa", "zzz"):
        Location.objects.filter(slug="hloc").update(name=name)
        location = Location.objects.get(slug="hloc")
        location.save()  # NetBox recomputes the tree's sort paths
        assert racks() == before


def test_q_never_searches_withheld_values(world, db):
    for user in (world["admin"], world["grouped"]):
        for guess in (SECRET, SECRET[:3], "community"):
            assert call(user, "count_objects", object_type="extras.configcontext", filters={"q": guess})["count"] == 0
        assert call(user, "count_objects", object_type="extras.configcontext", filters={"q": "v-cc"})["count"] == 1
        # Whether a JSON document is there at all is no search of it.
        assert "error" not in call(
            user, "count_objects", object_type="dcim.device", filters={"local_context_data": False}
        )


def test_errors_are_capped_and_never_echo_unbounded_input(world, db):
    admin = world["admin"]
    results = [
        call(admin, "query_objects", object_type="dcim.device", fields=[f"field{n}" for n in range(5000)]),
        call(admin, "query_objects", object_type="x" * 100_000),
        call(admin, "count_objects", object_type="dcim.device", filters={f"f{n}": 1 for n in range(5000)}),
        call(admin, "count_objects", object_type="dcim.device", group_by="x" * 100_000),
        call(admin, "query_objects", object_type="dcim.device", ordering=["y" * 100_000]),
        call(admin, "get_changelog", since="z" * 100_000),
        run_tool("no-such-tool-" + "w" * 100_000, {}, admin),
    ]
    for result in results:
        assert set(result) == {"error"} and 0 < len(result["error"]) <= 500, result["error"][:600]
    assert call(admin, "count_objects", object_type="dcim.device", group_by="local_context_data") == {
        "error": "cannot group by 'local_context_data': it is a JSON document; group by by one of its fields is "
        "not supported"
    }


def test_model_choice_by_a_shared_name_does_not_match_hidden_objects(world, db):
    """Found by the mutation suite (seed 241081517): MACs filtered by interface name also matched MACs of
    hidden interfaces with the same name."""
    result = call(world["grouped"], "count_objects", object_type="dcim.macaddress", filters={"interface": "et0"})
    assert result == {
        "error": "filter 'interface' cannot be used on dcim.macaddress: it reads dcim.interface "
        "objects, and your permissions do not let you view all of them"
    }
    assert (
        call(
            world["grouped"],
            "count_objects",
            object_type="dcim.macaddress",
            filters={"interface_id": Interface.objects.get(device__name="va-1", name="et0").pk},
        )["count"]
        == 1
    )


def test_a_filter_on_the_objects_own_column_is_not_refused_for_its_default_order(world, db):
    """Interfaces are ordered by device: a filter on their own column must not count that join (bench)."""
    device = Device.objects.get(name="va-1").pk
    result = call(
        world["grouped"], "count_objects", object_type="dcim.interface", filters={"device_id": device, "enabled": True}
    )
    assert result == {"object_type": "dcim.interface", "count": 2}


def test_group_and_search_displays_name_no_hidden_relation(world, db):
    """Found by the mutation suite (seed 46101485): a group's display of an unnamed device named its
    hidden manufacturer."""
    grouped = world["grouped"]
    groups = call(grouped, "count_objects", object_type="dcim.interface", group_by="device")["groups"]
    unnamed = Device.objects.get(name=None).pk
    assert [g["display"] for g in groups if g["value"] == unnamed] == [f" HX2 ({unnamed})"]
    assert "HM" not in json.dumps(call(grouped, "search", query="HX2"))


def test_a_computed_tools_object_display_names_no_hidden_relation(world, db):
    """Found by the mutation suite (seed 967964889): device_connections' ``object``, an unnamed device, was
    displayed from a masked copy whose device type's manufacturer str() loaded only after masking."""
    unnamed = Device.objects.get(name=None).pk
    for label in ("grouped", "own"):
        shown = call(world[label], "device_connections", device_id=unnamed)["object"]
        assert shown["display"] == f" HX2 ({unnamed})", label
    assert call(world["admin"], "device_connections", device_id=unnamed)["object"]["display"] == f"HM HX2 ({unnamed})"


def test_excluded_config_contexts_and_hidden_cable_ends_tell_nothing(world, db):
    """Found by the mutation suite (seed 467257561): with config contexts in ``excluded_models``,
    device_config still merged them; device_connections named a hidden cable end "an object you may not
    view", so deleting it changed the answer."""
    grouped, device = world["grouped"], Device.objects.get(name="va-3")
    assert call(grouped, "device_config", device_id=device.pk)["config_context"] is None  # some are hidden
    with plugins_config(excluded_models=["extras.configcontext"]):  # all are: not "none is hidden"
        assert call(grouped, "device_config", device_id=device.pk)["config_context"] is None
    for device in Device.objects.restrict(grouped, "view"):
        assert "an object you may not view" not in json.dumps(call(grouped, "device_connections", device_id=device.pk))


def test_nested_counters_and_cable_path_filters_tell_nothing(world, db):
    """Found by the mutation suite (seed 899721439): a nested device type's device_count counted hidden
    devices; filters through cable paths and terminations (connected, unterminated) matched hidden ends."""
    grouped = world["grouped"]
    nested = _get(grouped, Device, ["device_type"], name="vb-1")["device_type"]
    assert nested["display"] == "HX2" and nested["device_count"] is None
    for object_type, filters in (("dcim.interface", {"connected": True}), ("dcim.cable", {"unterminated": False})):
        assert "error" in call(grouped, "count_objects", object_type=object_type, filters=filters)
        assert "error" not in call(world["admin"], "count_objects", object_type=object_type, filters=filters)
