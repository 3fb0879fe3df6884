"""Prefix utilisation as NetBox computes it (Prefix.get_utilization)."""

from ipam.models import VRF

from ..filters import apply_filters
from ..handlers import visible
from ..types import ToolError, get_object_type
from .common import as_percent, link, page_size, visible_pks

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
    rows, vrfs = [], visible_pks(VRF, user, queryset.exclude(vrf=None).values_list("vrf", flat=True))
    for prefix in queryset:
        percent = as_percent(prefix.get_utilization())
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
