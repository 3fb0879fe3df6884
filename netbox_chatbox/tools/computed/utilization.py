"""Prefix utilisation as NetBox computes it (Prefix.get_utilization), for many prefixes at once."""

from bisect import bisect_left, bisect_right
from collections import defaultdict

from django.db import connection
from django.db.models import Q
from ipam.choices import PrefixStatusChoices
from ipam.models import VRF, IPAddress, IPRange, Prefix
from ipam.querysets import _merge_intervals
from netaddr import IPAddress as IPAddr

from ..filters import apply_filters
from ..handlers import visible
from ..types import ToolError, get_object_type
from ..visibility import Visibility
from .common import as_percent, link, page_size

MAX_UTILIZATION_PREFIXES = 500  # prefixes prefix_utilization computes in one call (narrow with filters)


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
    rows, vrfs = [], Visibility(user).visible(VRF, [p.vrf_id for p in prefixes if p.vrf_id is not None])
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
    and their distinct child IP hosts, in NetBox's arithmetic (the tests compare every prefix)."""
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
    ranges = defaultdict(list)  # vrf id → [(start, end)] of the ranges marked utilized (few, in practice)
    utilized = IPRange.objects.filter(mark_utilized=True, vrf_id__in={p.vrf_id for p in prefixes} - {None})
    if any(p.vrf_id is None for p in prefixes):
        utilized |= IPRange.objects.filter(mark_utilized=True, vrf__isnull=True)
    for start, end, vrf_id in utilized.order_by().values_list("start_address", "end_address", "vrf_id"):
        ranges[vrf_id].append((start.ip, end.ip))
    out, spans = {}, {}
    for prefix in prefixes:
        network, size = prefix.prefix, prefix._get_utilization_denominator()
        # As Prefix.get_child_ranges(): ranges of the VRF lying wholly inside the prefix.
        intervals = _merge_intervals(
            [
                (s, e)
                for s, e in ranges[prefix.vrf_id]
                if s.version == network.version and network.first <= int(s) and int(e) <= network.last
            ]
        )
        in_ranges = sum(int(end) - int(start) + 1 for start, end in intervals)
        if in_ranges >= size:
            out[prefix.pk] = 100
        elif intervals:  # rare: NetBox's own count, which leaves the ranges out
            hosts = prefix.get_child_ips().count_distinct_hosts(exclude_intervals=intervals)
            out[prefix.pk] = min(float(in_ranges + hosts) / size * 100, 100)
        else:
            spans[prefix.pk] = prefix
    counts = _distinct_hosts(spans.values())
    for pk, prefix in spans.items():
        out[pk] = min(float(counts.get(pk, 0)) / prefix._get_utilization_denominator() * 100, 100)
    return out


def _distinct_hosts(prefixes) -> dict:
    """{prefix id: its distinct child IP hosts} in one query: for each, what NetBox's
    ``get_child_ips().count_distinct_hosts()`` counts (hosts within the prefix's span, in its VRF)."""
    prefixes = list(prefixes)
    if not prefixes:
        return {}
    rows = ", ".join(["(%s, %s::inet, %s::inet, %s::bigint)"] * len(prefixes))
    params = []
    for prefix in prefixes:
        network = prefix.prefix
        first = IPAddr(network.first, version=network.version)
        params += [prefix.pk, str(first), str(IPAddr(network.last, version=network.version)), prefix.vrf_id]
    sql = (
        f"SELECT span.id, COUNT(DISTINCT HOST(ip.address)::inet) FROM (VALUES {rows}) AS span(id, first, last, vrf) "
        f"JOIN {IPAddress._meta.db_table} ip ON HOST(ip.address)::inet BETWEEN span.first AND span.last "
        "AND ip.vrf_id IS NOT DISTINCT FROM span.vrf GROUP BY span.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())
