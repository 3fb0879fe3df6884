"""Shared by the computed tools: finding the parent object among those the user may view, links, runs."""

from collections import defaultdict
from functools import lru_cache
from itertools import islice

from dcim.models import Device
from django.core.exceptions import FieldDoesNotExist
from django.db.models import prefetch_related_objects

from ...conf import get_settings
from ..types import ToolError
from ..visibility import Visibility


def page_size(limit, default=20):
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
    return {"id": obj.pk, "display": vis.display(obj) if vis is not None else str(obj), "url": obj.get_absolute_url()}


def may_view(obj, vis: Visibility) -> bool:
    return obj.pk in vis.visible(type(obj), [obj.pk])


def related_name(obj, vis: Visibility):
    """A related object's name when the user may view it, else None (as if the relation were empty)."""
    return str(obj) if obj is not None and may_view(obj, vis) else None


def prefetch_parents(objects):
    """Load the parents (``parent_object``: a port's device, a circuit termination's circuit) of these objects
    with one query per type, where reading each one's would query once per object."""
    by_model = defaultdict(list)
    for obj in objects:
        by_model[type(obj)].append(obj)
    for model, instances in by_model.items():
        if name := _parent_relation(model):
            prefetch_related_objects(instances, name)


@lru_cache(maxsize=256)
def _parent_relation(model):
    """The foreign key NetBox's ``parent_object`` property of ``model`` returns (``device``, ``circuit``…)."""
    prop = getattr(model, "parent_object", None)
    for name in prop.fget.__code__.co_names if isinstance(prop, property) else ():
        try:
            if model._meta.get_field(name).many_to_one:
                return name
        except FieldDoesNotExist:
            continue
    return None


def find(model, user, what: str, id=None, given=None, related=(), **lookups):
    """The one object of ``model`` the user may view matching ``id`` or ``lookups`` (described as ``given``
    in errors), with its ``related`` objects joined; a hidden one reads as missing."""
    queryset = model.objects.restrict(user, "view")
    if related:  # select_related() without names would join every non-null relation
        queryset = queryset.select_related(*related)
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


def find_device(user, device=None, device_id=None):
    if device_id is not None:
        return find(Device, user, "device", id=device_id)
    if not device:
        raise ToolError("name the device (name or device_id)")
    return find(Device, user, "device", name__iexact=device)


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


def capped(items, limit, key):
    """{key: the first ``limit`` items, has_more} from an iterator (never materialised beyond limit + 1)."""
    items = list(islice(items, limit + 1))
    out = {key: items[:limit]}
    if len(items) > limit:
        out["has_more"] = True
    return out


def as_percent(value) -> float:
    return round(float(value), 1)
