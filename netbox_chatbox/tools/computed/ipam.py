"""Free IP space: addresses of a prefix or range, and prefixes of a prefix or aggregate."""

import netaddr
from ipam.models import VRF, Aggregate, IPRange, Prefix

from ..types import ToolError
from ..visibility import Visibility
from .common import as_percent, capped, find, link, page_size, related_name


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
    limit = page_size(limit)
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
        "object": {**link(parent), "type": kind, "vrf": related_name(parent.vrf, Visibility(user)), **details},
        "usable": {"first": str(first), "last": str(last), "size": size},
        "utilization_percent": as_percent(utilization),
        "available_count": parent.get_available_ip_count(),
        "first_available": first_free,
        **capped(ranges, limit, "available_ranges"),
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
    limit = page_size(limit)
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
            "utilization_percent": as_percent(parent.get_utilization()),
        },
        "available_addresses": free.size,
        **capped(({"prefix": str(c), "size": c.size} for c in free.iter_cidrs()), limit, "available_prefixes"),
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
            **capped(subnets, limit, "first"),
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
