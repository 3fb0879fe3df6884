"""Free numbers: VLAN ids of a VLAN group and ASNs of an ASN range, as runs."""

from django.db.models import Q
from ipam.models import ASNRange, VLANGroup

from ..types import ToolError
from .common import capped, find, link, page_size, runs


def available_vlans(user, group=None, group_id=None, limit=None):
    """Free VLAN ids of a VLAN group (NetBox's available-vlans), as ranges."""
    limit = page_size(limit)
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
        **capped(iter(runs(free)), limit, "available_ranges"),
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
    limit = page_size(limit)
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
        **capped(gaps(), limit, "available_ranges"),
        "in_use": {"count": len(numbers), "results": [{**link(a), "asn": a.asn} for a in shown]},
    }
    if hidden := len(numbers) - visible_count:
        result["in_use"]["hidden_in_use"] = hidden
        result["in_use"]["note"] = f"{hidden} ASN(s) are in use by ASNs you may not view"
    return result
