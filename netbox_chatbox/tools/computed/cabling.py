"""Cable paths and connections, as NetBox traces them; a trace stops at the first hidden hop."""

from dcim.models import Interface
from django.db.models import Q

from ...conf import get_settings
from ..types import ToolError, get_object_type
from ..visibility import Visibility
from .common import find, find_device, link, may_view, page_size, prefetch_parents

ENDPOINT_TYPES = (
    "dcim.interface",
    "dcim.consoleport",
    "dcim.consoleserverport",
    "dcim.powerport",
    "dcim.poweroutlet",
    "dcim.powerfeed",
)


def _find_endpoint(vis, object_type, id, device, name):
    user = vis.user
    info = get_object_type(object_type)
    if info.label not in ENDPOINT_TYPES:
        raise ToolError(f"object_type must be one of {', '.join(ENDPOINT_TYPES)}")
    if id is not None:
        endpoint = find(info.model, user, info.verbose_name, id=id)
    else:
        if not name:
            raise ToolError('give the port\'s id, or device and name (e.g. {"device": "core-sw1", "name": "xe-0/0/1"})')
        parent = find_device(user, device)
        endpoint = find(info.model, user, info.verbose_name, device=parent, name__iexact=name)
    parent = getattr(endpoint, "device", None)
    if parent is not None and not may_view(parent, vis):
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
    origin = _find_endpoint(vis, object_type, id, device, name)
    segments = origin.trace()
    prefetch_parents(obj for near, cable, far in segments for obj in [*near, *(cable or []), *far])
    allowed = {}
    for segment in segments:
        for obj in _hop_objects(segment):
            allowed.setdefault(type(obj), set()).add(obj.pk)
    allowed = {model: vis.visible(model, pks) for model, pks in allowed.items()}
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
    limit = page_size(limit, default=get_settings().tool_max_results)
    parent = find_device(user, device, device_id)
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
    rows = list(interfaces[:limit])
    total = len(rows) if len(rows) < limit else interfaces.count()  # counted only when there may be more
    for interface in rows:
        interface._peers = list(interface.link_peers)
        interface._ends = list(interface.connected_endpoints)
    prefetch_parents(obj for interface in rows for obj in [*interface._peers, *interface._ends])
    peers = {}
    for interface in rows:
        for obj in [*interface._peers, *interface._ends, *([interface.cable] if interface.cable else [])]:
            peers.setdefault(type(obj), set()).add(obj.pk)
            if (owner := getattr(obj, "parent_object", None)) is not None:
                peers.setdefault(type(owner), set()).add(owner.pk)
    allowed = {model: vis.visible(model, pks) for model, pks in peers.items()}

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
            # Hidden ends are missing from the list, as in every other answer: naming them "an object you may
            # not view" told that one exists (found by the mutation suite: deleting it changed the answer).
            if visible := [o for o in objs if shown(o)]:
                row[key] = [_describe(o, vis) for o in visible]
        results.append(row)
    result = {"object": link(parent, vis), "count": total, "results": results}
    if total > len(rows):
        result["has_more"] = True
    return result
