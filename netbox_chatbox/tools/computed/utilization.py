"""Prefix utilisation as NetBox computes it (Prefix.get_utilization), for many prefixes at once."""

from bisect import bisect_left, bisect_right
from collections import defaultdict

from django.db.models import Count, Q
from ipam.choices import PrefixStatusChoices
from ipam.models import VRF, IPAddress, IPRange, Prefix
from ipam.querysets import HOST_ADDRESS, _merge_intervals
from netaddr import IPAddress as IPAddr

from ..filters import apply_filters
from ..handlers import visible
from ..types import ToolError, get_object_type
from .common import as_percent, link, page_size, visible_pks

MAX_UTILIZATION_PREFIXES = 500  # prefixes prefix_utilization computes in one call (narrow with filters)
COUNTS_PER_QUERY = 100  # distinct-host counts per aggregate query


def prefix_utilization(user, filters=None, min_percent=None, max_percent=None, limit=None):
    """Utilisation of the prefixes matching filters, fullest first (NetBox's Prefix.get_utilization)."""
    limit = page_size(limit)
    info = get_object_type("ipam.prefix")
    queryset = apply_filters(info, visible(info, user), filters, user).select_related("vrf")
    total = queryset.count()
    if total > MAX_UTILIZATION_PREFIXES:
        raise ToolError(
            f"{total} prefixes match; narrow the filters to at most {MAX_UTILIZATION_PREFIXES} "
            "(e.g. site, vrf, within, status, mask_length)"
        )
    prefixes = list(queryset)
    used = utilizations(prefixes)
    rows, vrfs = [], visible_pks(VRF, user, [p.vrf_id for p in prefixes if p.vrf_id is not None])
    for prefix in prefixes:
        percent = as_percent(used[prefix.pk])
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


def utilizations(prefixes) -> dict:
    """{prefix id: the value Prefix.get_utilization() returns}, for many prefixes in a few queries rather than
    two or three each: containers from their child prefixes, the others from the IP ranges marked utilized
    and the distinct child IP hosts outside them, in NetBox's arithmetic (the tests compare every prefix)."""
    out, containers, others = {}, [], []
    for prefix in prefixes:
        if prefix.mark_utilized:
            out[prefix.pk] = 100
        elif prefix.status == PrefixStatusChoices.STATUS_CONTAINER:
            containers.append(prefix)
        else:
            others.append(prefix)
    out.update(_container_utilizations(containers))
    out.update(_host_utilizations(others))
    return out


def _container_utilizations(containers) -> dict:
    """A container's child prefixes (same VRF, strictly inside) as an address count, as NetBox's IPSet of them."""
    if not containers:
        return {}
    condition = Q()
    for prefix in containers:
        condition |= Q(prefix__net_contained=str(prefix.prefix), vrf_id=prefix.vrf_id)
    children = defaultdict(list)  # (vrf id, IP version) → sorted (first, last, prefix length)
    for network, vrf_id in Prefix.objects.filter(condition).order_by().values_list("prefix", "vrf_id"):
        children[vrf_id, network.version].append((network.first, network.last, network.prefixlen))
    for items in children.values():
        items.sort()
    out = {}
    for prefix in containers:
        network = prefix.prefix
        items = children[prefix.vrf_id, network.version]
        inside = items[bisect_left(items, (network.first,)) : bisect_right(items, (network.last, float("inf")))]
        size, end = 0, -1
        for first, last, length in inside:  # the union of the CIDR blocks, which nest or are disjoint
            if length > network.prefixlen and last > end:
                size += last - max(first, end + 1) + 1
                end = last
        out[prefix.pk] = min(float(size) / network.size * 100, 100)
    return out


def _host_utilizations(prefixes) -> dict:
    """Utilized IP ranges plus the distinct child IP hosts outside them, over NetBox's denominator."""
    if not prefixes:
        return {}
    bounds = {prefix.pk: (prefix.prefix.first, prefix.prefix.last, prefix.prefix.version) for prefix in prefixes}
    ranges = defaultdict(list)  # vrf id → [(start, end)] of the ranges marked utilized
    condition = Q()
    for prefix in prefixes:
        condition |= Q(
            vrf_id=prefix.vrf_id, **_host_between("start_address", prefix), **_host_between("end_address", prefix)
        )
    for start, end, vrf_id in (
        IPRange.objects.filter(condition, mark_utilized=True)
        .order_by()
        .values_list("start_address", "end_address", "vrf_id")
    ):
        ranges[vrf_id].append((start.ip, end.ip))
    out, counted = {}, {}
    for prefix in prefixes:
        first, last, version = bounds[prefix.pk]
        intervals = _merge_intervals(
            [(s, e) for s, e in ranges[prefix.vrf_id] if s.version == version and first <= int(s) and int(e) <= last]
        )
        in_ranges = sum(int(end) - int(start) + 1 for start, end in intervals)
        if in_ranges >= prefix._get_utilization_denominator():
            out[prefix.pk] = 100
        else:
            counted[prefix] = (in_ranges, intervals)
    items = list(counted.items())
    for offset in range(0, len(items), COUNTS_PER_QUERY):
        chunk = items[offset : offset + COUNTS_PER_QUERY]
        hosts = {f"p{prefix.pk}": _child_hosts(prefix, intervals) for prefix, (_, intervals) in chunk}
        either = Q()
        for condition in hosts.values():
            either |= condition
        counts = (
            IPAddress.objects.filter(either)
            .order_by()
            .aggregate(
                **{key: Count(HOST_ADDRESS, distinct=True, filter=condition) for key, condition in hosts.items()}
            )
        )
        for prefix, (in_ranges, _) in chunk:
            used = in_ranges + counts[f"p{prefix.pk}"]
            out[prefix.pk] = min(float(used) / prefix._get_utilization_denominator() * 100, 100)
    return out


def _host_between(field, prefix) -> dict:
    """The prefix's span, as NetBox's get_child_ips()/get_child_ranges() bound it."""
    network = prefix.prefix
    span = (IPAddr(network.first, version=network.version), IPAddr(network.last, version=network.version))
    return {f"{field}__host_between": span}


def _child_hosts(prefix, utilized) -> Q:
    """Prefix.get_child_ips() (a non-container's: same VRF) minus the utilized intervals, as a condition."""
    condition = Q(vrf_id=prefix.vrf_id, **_host_between("address", prefix))
    for start, end in utilized:
        condition &= ~Q(address__host_between=(start, end))
    return condition
