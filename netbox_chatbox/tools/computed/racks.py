"""Rack space: free and used units, reservations and utilisation (NetBox's Rack methods)."""

import decimal

from dcim.models import Device, Rack, RackReservation, Site
from django.db.models import Q, prefetch_related_objects
from utilities.data import drange

from ..visibility import Visibility
from .common import as_percent, find, link, related_name

FACES = (None, "front", "rear")  # get_available_units' rack_face: None is both (a full-depth device)


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
        parent = find(Rack, user, "rack", id=rack_id, related=["site"])
    else:
        lookups = {"name__iexact": rack} if rack else {}
        if site:
            lookups["site__in"] = _sites(user, site)
        given = f"rack={rack}" + (f" at site {site!r}" if site else "")
        parent = find(Rack, user, "rack", given=given, related=["site"], **lookups)
    # get_reserved_units() reads the reservations here and again in get_utilization(): loaded once.
    prefetch_related_objects([parent], "reservations")
    reserved = parent.get_reserved_units()  # {unit: RackReservation}
    devices = list(
        parent.devices.filter(position__isnull=False, device_type__u_height__gt=0)
        .select_related("device_type")
        .order_by("-position")
    )
    # NetBox's free half units per face (a device of u_height 0.5 fits each), one call per face; a
    # device of ``height`` fits at u when every half unit it needs is among them (NetBox's own rule in
    # get_available_units, which would otherwise be called, and query, once per face and height).
    # A full-depth device takes its units on both faces: when all are, the faces agree and one call does.
    faces = FACES if any(not d.device_type.is_full_depth for d in devices) else (None,)
    open_units = {face: set(parent.get_available_units(u_height=0.5, rack_face=face)) for face in faces}

    def free(height, face):  # whole-U start positions (NetBox lists half units too), reservations left out
        units, height = open_units.get(face, open_units[None]), decimal.Decimal(height)  # units are Decimals
        return [
            u
            for u in units
            if u == int(u)
            and set(drange(u, u + height, 0.5)) <= units
            and not any(u <= r < u + max(height, 1) for r in reserved)
        ]

    shown = vis.visible(Device, [d.pk for d in devices])
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
    visible_reservations = vis.visible(RackReservation, [r.pk for r in reservations])
    return {
        "object": {
            **link(parent),
            "type": "dcim.rack",
            "site": related_name(parent.site, vis),
            "u_height": parent.u_height,
            "starting_unit": parent.starting_unit,
            "desc_units": parent.desc_units,
        },
        "utilization_percent": as_percent(parent.get_utilization()),
        "power_utilization_percent": as_percent(parent.get_power_utilization()),
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
