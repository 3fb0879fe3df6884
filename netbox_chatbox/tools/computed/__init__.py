"""Computed NetBox answers: free IPs, prefixes, VLAN ids and ASNs, utilisation, rack space, cable
paths, connections and configurations, from NetBox's own model methods.

The permission rule (README, "What the assistant can read"): the parent object (prefix, range, group,
rack, device, interface) is looked up among those the user may view, so a hidden one reads as missing.
NetBox's methods then see every object, so space taken by an object the user may not view is counted
as in use (nothing hidden is ever offered as free) but reported only as a number, never by identity.
A cable trace stops at the first hop the user may not view and says only that the path continues.
Ranges are summarised as first/last/size, never expanded.
"""

from .cabling import ENDPOINT_TYPES, device_connections, trace_cable
from .config import device_config
from .ipam import available_ips, available_prefixes
from .numbers import available_asns, available_vlans
from .racks import rack_space
from .utilization import prefix_utilization

__all__ = (
    "ENDPOINT_TYPES",
    "available_asns",
    "available_ips",
    "available_prefixes",
    "available_vlans",
    "device_config",
    "device_connections",
    "prefix_utilization",
    "rack_space",
    "trace_cable",
)
