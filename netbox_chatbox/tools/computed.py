"""Computed NetBox answers: free IPs, prefixes, VLAN ids and ASNs, utilisation, rack space, cable
paths, connections and configurations, from NetBox's own model methods.

The permission rule (README, "What the assistant can read"): the parent object (prefix, range, group,
rack, device, interface) is looked up among those the user may view, so a hidden one reads as missing.
NetBox's methods then see every object, so space taken by an object the user may not view is counted
as in use (nothing hidden is ever offered as free) but reported only as a number, never by identity.
A cable trace stops at the first hop the user may not view and says only that the path continues.
Ranges are summarised as first/last/size, never expanded.
"""

import copy
from itertools import islice

import netaddr
from dcim.models import Device, Interface, Rack, RackReservation, Site
from django.db.models import Q
from extras.models import ConfigContext
from ipam.models import VRF, Aggregate, ASNRange, IPRange, Prefix, VLANGroup

from ..conf import get_settings
from .handlers import apply_filters, viewable, visible
from .types import ToolError, get_object_type, scrub
from .visibility import Visibility, mask

MAX_UTILIZATION_PREFIXES = 500  # prefixes prefix_utilization computes in one call (narrow with filters)


# ----------------------------------------------------------------------------------------------
# Shared helpers


def _limit(limit, default=20):
    maximum = get_settings().tool_max_results
    if limit is None:
        return min(default, maximum)
    if limit > maximum:
        raise ToolError(f"limit must be between 1 and {maximum}")
    return limit


def link(obj, vis: Visibility | None = None) -> dict:
    """An object as {id, display, url}: the url is its NetBox page (the chat turns it into a link).

    With ``vis`` (a constrained user's), the display is built from a masked copy, so a name made from
    relations (an unnamed device's type) reads only objects the user may view."""
    shown = obj
    if vis is not None and not vis.user.is_superuser:
        shown = copy.deepcopy(obj)
        mask([shown], vis)
    return {"id": obj.pk, "display": str(shown), "url": obj.get_absolute_url()}


def visible_pks(model, user, pks) -> set:
    """Which of these primary keys of ``model`` the user may view (one query, none for superusers)."""
    pks = set(pks)
    allowed = viewable(model, user) if not user.is_superuser else None
    if allowed is None or not pks:
        return pks
    return set(allowed.filter(pk__in=pks).values_list("pk", flat=True))


def may_view(obj, user) -> bool:
    return obj.pk in visible_pks(type(obj), user, [obj.pk])


def related_name(obj, user):
    """A related object's name when the user may view it, else None (as if the relation were empty)."""
    return str(obj) if obj is not None and may_view(obj, user) else None


def find(model, user, what: str, id=None, given=None, **lookups):
    """The one object of ``model`` the user may view matching ``id`` or ``lookups`` (described as ``given``
    in errors); a hidden one reads as missing."""
    queryset = model.objects.restrict(user, "view")
    if id is not None:
        queryset = queryset.filter(pk=id)
    elif lookups:
        queryset = queryset.filter(**lookups)
    else:
        raise ToolError(f"name the {what} (see the tool's example)")
    found = list(queryset[:6])
    if not found:
        given = (
            f"id {id}" if id is not None else given or ", ".join(f"{k.split('__')[0]}={v}" for k, v in lookups.items())
        )
        raise ToolError(f"no {what} matches {given}")
    if len(found) > 1:
        names = "; ".join(f"{o} (id {o.pk})" for o in found[:5])
        raise ToolError(f"more than one {what} matches: {names}; pass its id")
    return found[0]


def runs(numbers) -> list[dict]:
    """Sorted integers as runs [{first, last, size}] (VLAN ids, ASNs, rack units)."""
    out = []
    for n in numbers:
        if out and n == out[-1]["last"] + 1:
            out[-1]["last"] = n
            out[-1]["size"] += 1
        else:
            out.append({"first": n, "last": n, "size": 1})
    return out


def _capped(items, limit, key):
    """{key: the first ``limit`` items, has_more} from an iterator (never materialised beyond limit + 1)."""
    items = list(islice(items, limit + 1))
    out = {key: items[:limit]}
    if len(items) > limit:
        out["has_more"] = True
    return out


def _percent(value) -> float:
    return round(float(value), 1)


def _vrf_lookup(vrf, user):
    """A VRF by name or id among those the user may view (a hidden VRF matches nothing); '' is global."""
    if vrf in (None, ""):
        return {"vrf__isnull": True}
    vrfs = VRF.objects.restrict(user, "view")
    return {"vrf__in": vrfs.filter(pk=int(vrf)) if str(vrf).isdigit() else vrfs.filter(name__iexact=vrf)}


def _network(text, what="prefix"):
    try:
        return netaddr.IPNetwork(str(text).strip())
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ToolError(f"{text!r} is not a {what} such as 10.0.0.0/24 or 2001:db8::/48") from None


# ----------------------------------------------------------------------------------------------
# IP space


def _find_prefix(user, prefix=None, prefix_id=None, vrf=None):
    if prefix_id is not None:
        return find(Prefix, user, "prefix", id=prefix_id)
    if not prefix:
        raise ToolError('give the prefix (e.g. "10.1.2.0/24") or its prefix_id')
    network = _network(prefix)
    lookups = {"prefix": str(network.cidr)}
    if vrf is not None:
        lookups.update(_vrf_lookup(vrf, user))
    given = f"prefix={network.cidr}" + (f" in VRF {vrf!r}" if vrf is not None else "")
    return find(Prefix, user, "prefix", given=given, **lookups)


def _in_use(child_ips, user, limit):
    """IP addresses taken: visible ones named, hidden ones only counted."""
    total = child_ips.count()
    shown = child_ips.restrict(user, "view") if not user.is_superuser else child_ips
    listed = list(shown.order_by("address")[:limit])
    visible_count = shown.count() if len(listed) == limit else len(listed)
    out = {
        "count": total,
        "results": [
            {**link(ip), "address": str(ip.address), "status": ip.status, "dns_name": ip.dns_name or None}
            for ip in listed
        ],
    }
    if visible_count > len(listed):
        out["has_more"] = True
    if hidden := total - visible_count:
        out["hidden_in_use"] = hidden
        out["note"] = f"{hidden} address(es) are in use by objects you may not view"
    return out


def available_ips(user, prefix=None, prefix_id=None, ip_range_id=None, vrf=None, limit=None):
    """Free addresses of a prefix or IP range (NetBox's available-ips), with utilisation and who uses what."""
    limit = _limit(limit)
    if ip_range_id is not None:
        parent = find(IPRange, user, "IP range", id=ip_range_id)
        kind = "ipam.iprange"
        size, utilization = parent.size, parent.utilization
        first, last = parent.start_address.ip, parent.end_address.ip
        details = {"mark_populated": parent.mark_populated, "mark_utilized": parent.mark_utilized}
    else:
        parent = _find_prefix(user, prefix, prefix_id, vrf)
        kind = "ipam.prefix"
        size, utilization = parent.usable_size, parent.get_utilization()
        first, last = parent.usable_ip_bounds
        details = {"status": parent.status, "is_pool": parent.is_pool, "mark_utilized": parent.mark_utilized}
    # The free intervals both get_available_ips() and the available-ips endpoint are built from, read
    # lazily: get_available_ips() turns every interval into CIDRs first (240 ms for a /16 holding 4,096 IPs).
    ranges = (
        {"first": str(start), "last": str(end), "size": int(end) - int(start) + 1}
        for start, end in parent._available_intervals()
    )
    first_free = parent.get_first_available_ip()
    result = {
        "object": {**link(parent), "type": kind, "vrf": related_name(parent.vrf, user), **details},
        "usable": {"first": str(first), "last": str(last), "size": size},
        "utilization_percent": _percent(utilization),
        "available_count": parent.get_available_ip_count(),
        "first_available": first_free,
        **_capped(ranges, limit, "available_ranges"),
        "in_use": _in_use(parent.get_child_ips().filter(address__host_between=(first, last)), user, limit),
    }
    if kind == "ipam.prefix":
        result["child_ranges"] = _child_ranges(parent, user, limit)
        if parent.mark_utilized:
            result["note"] = (
                "the prefix is marked utilized: NetBox counts it as 100 % used although the "
                "addresses above hold no IP address object"
            )
    return result


def _child_ranges(prefix, user, limit):
    ranges = prefix.get_child_ranges()
    total = ranges.count()
    shown = list(ranges.restrict(user, "view").order_by("start_address")[:limit])
    out = {
        "count": total,
        "results": [
            {
                **link(r),
                "start": str(r.start_address.ip),
                "end": str(r.end_address.ip),
                "size": r.size,
                "mark_populated": r.mark_populated,
                "mark_utilized": r.mark_utilized,
            }
            for r in shown
        ],
    }
    visible_count = len(shown) if len(shown) < limit else ranges.restrict(user, "view").count()
    if hidden := total - visible_count:
        out["hidden_in_use"] = hidden
    return out


def available_prefixes(user, prefix=None, prefix_id=None, aggregate_id=None, vrf=None, prefix_length=None, limit=None):
    """Free space inside a prefix or aggregate (NetBox's available-prefixes), optionally as blocks of one size."""
    limit = _limit(limit)
    if aggregate_id is not None:
        parent, kind = find(Aggregate, user, "aggregate", id=aggregate_id), "ipam.aggregate"
        children = parent.get_child_prefixes()
    else:
        parent, kind = _find_prefix(user, prefix, prefix_id, vrf), "ipam.prefix"
        children = parent.get_child_prefixes()
    free = parent.get_available_prefixes()
    result = {
        "object": {
            **link(parent),
            "type": kind,
            "prefix": str(parent.prefix),
            "utilization_percent": _percent(parent.get_utilization()),
        },
        "available_addresses": free.size,
        **_capped(({"prefix": str(c), "size": c.size} for c in free.iter_cidrs()), limit, "available_prefixes"),
    }
    if prefix_length is not None:
        longest = 32 if parent.prefix.version == 4 else 128
        if not parent.prefix.prefixlen < prefix_length <= longest:
            raise ToolError(f"prefix_length must be longer than /{parent.prefix.prefixlen} and at most /{longest}")
        blocks = [c for c in free.iter_cidrs() if c.prefixlen <= prefix_length]
        subnets = (str(s) for c in blocks for s in c.subnet(prefix_length))
        result["blocks"] = {
            "prefix_length": prefix_length,
            "count": sum(2 ** (prefix_length - c.prefixlen) for c in blocks),
            **_capped(subnets, limit, "first"),
        }
    total = children.count()
    shown = children.restrict(user, "view") if not user.is_superuser else children
    listed = list(shown.order_by("prefix")[:limit])
    result["child_prefixes"] = {
        "count": total,
        "results": [{**link(p), "prefix": str(p.prefix), "status": p.status} for p in listed],
    }
    visible_count = len(listed) if len(listed) < limit else shown.count()
    if visible_count > len(listed):
        result["child_prefixes"]["has_more"] = True
    if hidden := total - visible_count:
        result["child_prefixes"]["hidden_in_use"] = hidden
        result["child_prefixes"]["note"] = f"{hidden} child prefix(es) are in use by objects you may not view"
    return result


def prefix_utilization(user, filters=None, min_percent=None, max_percent=None, limit=None):
    """Utilisation of the prefixes matching filters, fullest first (NetBox's Prefix.get_utilization)."""
    limit = _limit(limit)
    info = get_object_type("ipam.prefix")
    queryset = apply_filters(info, visible(info, user), filters, user).select_related("vrf")
    total = queryset.count()
    if total > MAX_UTILIZATION_PREFIXES:
        raise ToolError(
            f"{total} prefixes match; narrow the filters to at most {MAX_UTILIZATION_PREFIXES} "
            "(e.g. site, vrf, within, status, mask_length)"
        )
    rows, vrfs = [], visible_pks(VRF, user, queryset.exclude(vrf=None).values_list("vrf", flat=True))
    for prefix in queryset:
        percent = _percent(prefix.get_utilization())
        if (min_percent is None or percent >= min_percent) and (max_percent is None or percent <= max_percent):
            rows.append(
                {
                    **link(prefix),
                    "prefix": str(prefix.prefix),
                    "status": prefix.status,
                    "vrf": str(prefix.vrf) if prefix.vrf_id in vrfs else None,
                    "utilization_percent": percent,
                }
            )
    rows.sort(key=lambda row: (-row["utilization_percent"], row["prefix"]))
    result = {"evaluated": total, "count": len(rows), "results": rows[:limit]}
    if len(rows) > limit:
        result["has_more"] = True
    return result


# ----------------------------------------------------------------------------------------------
# VLAN ids and ASNs


def available_vlans(user, group=None, group_id=None, limit=None):
    """Free VLAN ids of a VLAN group (NetBox's available-vlans), as ranges."""
    limit = _limit(limit)
    parent = (
        find(VLANGroup, user, "VLAN group", id=group_id)
        if group_id is not None
        else _by_name_or_slug(VLANGroup, user, "VLAN group", group)
    )
    free = parent.get_available_vids()
    vlans = parent.get_child_vlans()
    total = vlans.count()
    shown = list((vlans.restrict(user, "view") if not user.is_superuser else vlans)[:limit])
    visible_count = len(shown) if len(shown) < limit else vlans.restrict(user, "view").count()
    result = {
        "object": {
            **link(parent),
            "type": "ipam.vlangroup",
            "vid_ranges": parent.vid_ranges_items,
            "total_vlan_ids": parent.total_vlan_ids,
        },
        "available_count": len(free),
        "first_available": free[0] if free else None,
        **_capped(iter(runs(free)), limit, "available_ranges"),
        "in_use": {"count": total, "results": [{**link(v), "vid": v.vid, "name": v.name} for v in shown]},
    }
    if visible_count > len(shown):
        result["in_use"]["has_more"] = True
    if hidden := total - visible_count:
        result["in_use"]["hidden_in_use"] = hidden
        result["in_use"]["note"] = f"{hidden} VLAN id(s) are in use by VLANs you may not view"
    return result


def _by_name_or_slug(model, user, what, value):
    if value in (None, ""):
        raise ToolError(f"name the {what} (name, slug or id)")
    queryset = model.objects.restrict(user, "view")
    match = queryset.filter(Q(name__iexact=value) | Q(slug__iexact=value))
    found = list(match[:6])
    if not found:
        raise ToolError(f"no {what} named {value!r}")
    if len(found) > 1:
        raise ToolError(f"more than one {what} matches: " + "; ".join(f"{o} (id {o.pk})" for o in found[:5]))
    return found[0]


def available_asns(user, range=None, range_id=None, limit=None):
    """Free ASNs of an ASN range (NetBox's available-asns), as runs.

    Computed from NetBox's own child query (``get_child_asns``) as gaps: ``get_available_asns`` builds a
    Python set of the whole range, 95 million numbers for the 4-byte private range."""
    limit = _limit(limit)
    parent = (
        find(ASNRange, user, "ASN range", id=range_id)
        if range_id is not None
        else _by_name_or_slug(ASNRange, user, "ASN range", range)
    )
    used = parent.get_child_asns().order_by("asn")
    numbers = list(used.values_list("asn", flat=True).distinct())

    def gaps():
        start = parent.start
        for asn in numbers:
            if asn > start:
                yield {"first": start, "last": asn - 1, "size": asn - start}
            start = asn + 1
        if start <= parent.end:
            yield {"first": start, "last": parent.end, "size": parent.end - start + 1}

    size = parent.end - parent.start + 1
    free = next(gaps(), None)
    shown = list((used.restrict(user, "view") if not user.is_superuser else used)[:limit])
    visible_count = len(shown) if len(shown) < limit else used.restrict(user, "view").count()
    result = {
        "object": {**link(parent), "type": "ipam.asnrange", "start": parent.start, "end": parent.end, "size": size},
        "available_count": size - len(numbers),
        "first_available": free["first"] if free else None,
        **_capped(gaps(), limit, "available_ranges"),
        "in_use": {"count": len(numbers), "results": [{**link(a), "asn": a.asn} for a in shown]},
    }
    if hidden := len(numbers) - visible_count:
        result["in_use"]["hidden_in_use"] = hidden
        result["in_use"]["note"] = f"{hidden} ASN(s) are in use by ASNs you may not view"
    return result


# ----------------------------------------------------------------------------------------------
# Racks


def _units(units) -> list[dict]:
    """Rack unit numbers (Decimal, half units possible) as runs {first, last, size} in U."""
    out = []
    for u in sorted(units):
        if out and u == out[-1]["_last"] + 1:
            out[-1]["_last"] = u
        else:
            out.append({"_first": u, "_last": u})
    return [{"first": _u(r["_first"]), "last": _u(r["_last"]), "size": _u(r["_last"] - r["_first"] + 1)} for r in out]


def _u(value):
    return int(value) if value == int(value) else float(value)


def rack_space(user, rack=None, site=None, rack_id=None, u_height=1):
    """Free and used units of a rack (NetBox's Rack.get_available_units, reservations, utilisation)."""
    vis = Visibility(user)  # for displays built from relations
    if rack_id is not None:
        parent = find(Rack, user, "rack", id=rack_id)
    else:
        lookups = {"name__iexact": rack} if rack else {}
        if site:
            lookups["site__in"] = _sites(user, site)
        parent = find(Rack, user, "rack", given=f"rack={rack}" + (f" at site {site!r}" if site else ""), **lookups)
    reserved = parent.get_reserved_units()  # {unit: RackReservation}

    def free(height, face):  # whole-U start positions (NetBox lists half units too), reservations left out
        return [
            u
            for u in parent.get_available_units(u_height=height, rack_face=face)
            if u == int(u) and not any(u <= r < u + max(height, 1) for r in reserved)
        ]

    devices = list(
        parent.devices.filter(position__isnull=False, device_type__u_height__gt=0)
        .select_related("device_type")
        .order_by("-position")
    )
    shown = visible_pks(Device, user, [d.pk for d in devices])
    occupants, hidden = [], []
    for device in devices:
        height = device.device_type.u_height
        span = {
            "first": _u(device.position),
            "last": _u(device.position + max(height, 1) - 1),
            "face": device.face or None,
            "full_depth": device.device_type.is_full_depth,
        }
        if device.pk in shown:
            occupants.append({**link(device, vis), **span})
        else:
            hidden.append({**span, "in_use": "by a device you may not view"})
    reservations = list({r.pk: r for r in reserved.values()}.values())
    visible_reservations = visible_pks(RackReservation, user, [r.pk for r in reservations])
    return {
        "object": {
            **link(parent),
            "type": "dcim.rack",
            "site": related_name(parent.site, user),
            "u_height": parent.u_height,
            "starting_unit": parent.starting_unit,
            "desc_units": parent.desc_units,
        },
        "utilization_percent": _percent(parent.get_utilization()),
        "power_utilization_percent": _percent(parent.get_power_utilization()),
        "free_units": {
            "full_depth": {"count": len(full := free(1, None)), "ranges": _units(full)},
            "front_only": {"count": len(front := free(1, "front")), "ranges": _units(front)},
            "rear_only": {"count": len(rear := free(1, "rear")), "ranges": _units(rear)},
        },
        **(
            {
                "fits": {
                    "u_height": u_height,
                    "full_depth_positions": _units(free(u_height, None)),
                    "front_positions": _units(free(u_height, "front")),
                }
            }
            if u_height != 1
            else {}
        ),
        "reserved_units": [
            {
                "units": _units(r.units),
                **(
                    {**link(r), "description": r.description}
                    if r.pk in visible_reservations
                    else {"in_use": "reserved by a reservation you may not view"}
                ),
            }
            for r in reservations
        ],
        "results": occupants,
        "hidden_in_use": hidden,
        "note": "free units exclude reserved ones; front_only/rear_only count units free on that face, where "
        "half-depth devices fit; fits.*_positions are the lowest units a device of u_height can start at",
    }


def _sites(user, site):
    return Site.objects.restrict(user, "view").filter(Q(name__iexact=site) | Q(slug__iexact=site))


# ----------------------------------------------------------------------------------------------
# Devices: cable paths, connections, configuration


ENDPOINT_TYPES = (
    "dcim.interface",
    "dcim.consoleport",
    "dcim.consoleserverport",
    "dcim.powerport",
    "dcim.poweroutlet",
    "dcim.powerfeed",
)


def _find_device(user, device=None, device_id=None):
    if device_id is not None:
        return find(Device, user, "device", id=device_id)
    if not device:
        raise ToolError("name the device (name or device_id)")
    return find(Device, user, "device", name__iexact=device)


def _find_endpoint(user, object_type, id, device, name):
    info = get_object_type(object_type)
    if info.label not in ENDPOINT_TYPES:
        raise ToolError(f"object_type must be one of {', '.join(ENDPOINT_TYPES)}")
    if id is not None:
        endpoint = find(info.model, user, info.verbose_name, id=id)
    else:
        if not name:
            raise ToolError('give the port\'s id, or device and name (e.g. {"device": "core-sw1", "name": "xe-0/0/1"})')
        parent = _find_device(user, device)
        endpoint = find(info.model, user, info.verbose_name, device=parent, name__iexact=name)
    parent = getattr(endpoint, "device", None)
    if parent is not None and not may_view(parent, user):
        raise ToolError(f"no {info.verbose_name} matches id {endpoint.pk}")
    return endpoint


def _describe(obj, vis: Visibility) -> dict:
    """A hop of a path: the object's link, with its parent (device, circuit, panel) when it has one."""
    out = {**link(obj, vis), "type": obj._meta.label_lower}
    try:
        parent = obj.parent_object
    except (AttributeError, NotImplementedError):
        parent = None
    if parent is not None:
        out["parent"] = link(parent, vis)
    return out


def _hop_objects(segment):
    near, cable, far = segment
    for obj in [*near, *(cable or []), *far]:
        yield obj
        try:
            parent = obj.parent_object
        except (AttributeError, NotImplementedError):
            parent = None
        if parent is not None:
            yield parent


def trace_cable(user, object_type="dcim.interface", id=None, device=None, name=None):
    """The cable path from a port, hop by hop, as NetBox traces it (the trace endpoint, Interface.trace())."""
    vis = Visibility(user)  # for displays built from relations
    origin = _find_endpoint(user, object_type, id, device, name)
    segments = origin.trace()
    allowed = {}
    for segment in segments:
        for obj in _hop_objects(segment):
            allowed.setdefault(type(obj), set()).add(obj.pk)
    allowed = {model: visible_pks(model, user, pks) for model, pks in allowed.items()}
    hops = []
    result = {"object": _describe(origin, vis), "results": hops}
    for near, cable, far in segments:
        if not all(obj.pk in allowed[type(obj)] for obj in _hop_objects((near, cable, far))):
            result["continues"] = "the path continues through objects you may not view"
            break
        if not near:
            result["split"] = True
            break
        hops.append(
            {
                "near": [_describe(o, vis) for o in near],
                "cable": [
                    {
                        **link(c),
                        "type": c._meta.label_lower,
                        "status": getattr(c, "status", None),
                        "label": getattr(c, "label", "") or None,
                    }
                    for c in cable or []
                ]
                or None,
                "far": [_describe(o, vis) for o in far],
            }
        )
    path = origin.path
    if path is not None and "continues" not in result:
        result.update(complete=path.is_complete, active=path.is_active, split=path.is_split)
    if not segments:
        result["note"] = "not connected: no cable or path starts here"
    return result


def device_connections(user, device=None, device_id=None, limit=None):
    """Each cabled or connected interface of a device and what is at the other end (peer and path end)."""
    vis = Visibility(user)  # for displays built from relations
    limit = _limit(limit, default=get_settings().tool_max_results)
    parent = _find_device(user, device, device_id)
    interfaces = (
        Interface.objects.restrict(user, "view")
        .filter(device=parent)
        .filter(
            Q(cable__isnull=False) | Q(_path__isnull=False) | Q(wireless_link__isnull=False) | Q(mark_connected=True)
        )
        .select_related("cable", "_path")
        .prefetch_related(
            # what NetBox's interface API prefetches for these fields: the path's and the peers' objects
            *get_object_type("dcim.interface").declared_prefetches(["connected_endpoints", "link_peers"])
        )
        .order_by("_name")
    )
    total = interfaces.count()
    rows = list(interfaces[:limit])
    peers = {}
    for interface in rows:
        interface._peers = list(interface.link_peers)
        interface._ends = list(interface.connected_endpoints)
        for obj in [*interface._peers, *interface._ends, *([interface.cable] if interface.cable else [])]:
            peers.setdefault(type(obj), set()).add(obj.pk)
            if (owner := getattr(obj, "parent_object", None)) is not None:
                peers.setdefault(type(owner), set()).add(owner.pk)
    allowed = {model: visible_pks(model, user, pks) for model, pks in peers.items()}

    def shown(obj):
        owner = getattr(obj, "parent_object", None)
        return obj.pk in allowed[type(obj)] and (owner is None or owner.pk in allowed[type(owner)])

    results = []
    for interface in rows:
        row = {**link(interface), "type": interface.type, "enabled": interface.enabled}
        if interface.cable is not None:
            row["cable"] = link(interface.cable) if shown(interface.cable) else "a cable you may not view"
        if interface.mark_connected and interface.cable is None:
            row["mark_connected"] = True
        for key, objs in (("link_peers", interface._peers), ("connected_endpoints", interface._ends)):
            if objs:
                row[key] = [_describe(o, vis) if shown(o) else "an object you may not view" for o in objs]
        results.append(row)
    result = {"object": link(parent, vis), "count": total, "results": results}
    if total > len(rows):
        result["has_more"] = True
    return result


def device_config(user, device=None, device_id=None, render=False):
    """A device's merged config context and, with render, its rendered config template.

    Rendering needs NetBox's render_config permission on the device, as in NetBox's API; the template
    sees the config context without secret-like keys, like everything else the model reads."""
    parent = _find_device(user, device, device_id)
    context = scrub(parent.get_config_context())
    vis = Visibility(user)
    if vis.constrained(ConfigContext):
        # NetBox merges every context assigned, whatever the permissions: withheld as in get_object.
        result = {
            "object": link(parent, vis),
            "config_context": None,
            "note": "the merged config context is withheld: it may include contexts you may not view",
        }
    else:
        result = {"object": link(parent, vis), "config_context": context}
    if not render:
        return result
    if not Device.objects.restrict(user, "render_config").filter(pk=parent.pk).exists():
        raise ToolError("you may not render configurations of this device (NetBox's render_config permission)")
    template = parent.get_config_template()
    if template is None:
        result["rendered"] = None
        result["note"] = "no config template is assigned to this device, its role or its platform"
        return result
    if not may_view(template, user):
        raise ToolError("the device's config template is not visible to you")
    try:
        text = template.render(context={**context, "device": parent})
    except Exception as e:
        raise ToolError(f"the config template failed to render: {template.format_render_error(e)}") from None
    result.update(template=link(template), rendered=text)
    return result
