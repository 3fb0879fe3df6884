"""Objects rendered for the model: NetBox's REST serializers, with what the user may not view left out.

Related objects the user may not view are removed as if absent (``_without``), counts count only
visible objects (``_visible_counts``), and urls are NetBox's pages rather than its API.
"""

import re
from collections import defaultdict
from functools import lru_cache

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.urls import Resolver404, resolve
from utilities.api import get_annotations_for_serializer, get_prefetches_for_serializer
from utilities.fields import CounterCacheField

from .types import ToolError, object_type_for_model, path_end
from .visibility import Visibility, is_placeholder, load_display, mask, viewable, withheld_fields


@lru_cache(maxsize=1024)
def _is_ui_path(shape):
    try:
        resolve(shape)
        return True
    except Resolver404:
        return False


def _ui_url(api_url):
    """NetBox's UI path for a nested object's API URL (/api/dcim/sites/1/ → /dcim/sites/1/), if one exists."""
    if not isinstance(api_url, str) or not api_url.startswith("/api/"):
        return None
    path = api_url[len("/api") :]
    return path if _is_ui_path(re.sub(r"\d+/$", "0/", path)) else None


@lru_cache(maxsize=512)
def _api_model(list_path):
    """The model a REST list URL like /api/dcim/sites/ serves, or None."""
    try:
        view = resolve(f"{list_path}0/").func
    except Resolver404:
        return None
    queryset = getattr(getattr(view, "cls", None), "queryset", None)
    return queryset.model if queryset is not None else None


def _nested_model(value):
    """The model of a nested object in serializer output (a dict with an id and an API url), or None."""
    if (
        isinstance(value, dict)
        and "id" in value
        and isinstance(value.get("url"), str)
        and (match := re.fullmatch(r"(/api/.+/)\d+/", value["url"]))
    ):
        return _api_model(match[1])
    return None


def _hidden_related(vis, items):
    """(model, id) of the related objects in serializer output that the user may not view.

    One query per related type, and none for types the user may view entirely."""
    if vis.user.is_superuser:
        return set()
    found = defaultdict(set)

    def collect(value):
        if isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            if (model := _nested_model(value)) is not None:
                found[model].add(value["id"])
            for item in value.values():
                collect(item)

    for item in items:
        for value in item.values():
            collect(value)
    return {(model, pk) for model, ids in found.items() for pk in vis.hidden(model, ids)}


def _without(value, hidden):
    """Serializer output with hidden related objects removed as if absent: a single relation becomes
    empty (with its generic ``<name>_type``/``<name>_id``), a many relation loses the entry."""

    def is_hidden(item):
        if isinstance(item, dict) and {"object_type", "object_id", "object"} <= item.keys():
            item = item["object"]  # a generic reference (e.g. a cable's terminations)
        return (
            is_placeholder(item) or (_nested_model(item), item.get("id") if isinstance(item, dict) else None) in hidden
        )

    if isinstance(value, list):
        return [_without(item, hidden) for item in value if not is_hidden(item)]
    if not isinstance(value, dict):
        return value
    gone = {key for key, item in value.items() if is_hidden(item)}
    blank = gone | {f"{key}_{part}" for key in gone for part in ("type", "id")}
    return {key: None if key in blank else _without(item, hidden) for key, item in value.items()}


def _present(value):
    """Serializer output made small and link-friendly: ``url`` is the NetBox page, not the API."""
    if isinstance(value, list):
        return [_present(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "url" not in value and "display_url" not in value:
        return {k: _present(v) for k, v in value.items()}
    out = {k: value[k] for k in ("id", "display") if k in value}
    out["url"] = value.get("display_url") or _ui_url(value.get("url"))
    out.update((k, _present(v)) for k, v in value.items() if k not in ("id", "display", "url", "display_url"))
    return out


def field_list(info, fields, default):
    if fields is None:
        return list(default)
    unknown = [f for f in fields if f not in info.fields]
    if unknown:
        named = ", ".join(repr(f[:60]) for f in unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise ToolError(f"unknown field(s) {named} for {info.label}; describe_object_type lists its fields")
    return list(dict.fromkeys(fields))


def serialize(info, queryset, fields, user):
    """Render objects with NetBox's REST serializer, prefetching what the chosen fields need (no N+1),
    as NetBox's REST API does (declared and derived prefetches, count annotations, config context).
    Unlike NetBox's API, related objects the user may not view are left out (``_without``) and
    not counted (``_visible_counts``)."""
    names = list(dict.fromkeys(["id", "display", "display_url", *fields]))
    derived = get_prefetches_for_serializer(info.serializer, fields=names)
    prefetch = info.declared_prefetches(names) + info.display_prefetches() + derived
    for path in derived:  # nested objects are displayed too
        if (related := _related_type(info.model, path)) is not None:
            prefetch += [f"{path}__{lookup}" for lookup in related.display_prefetches()]
    if any(name.startswith("connected_endpoints") for name in names) and hasattr(info.model, "_path"):
        prefetch.append("_path")  # loaded up front, so that masking sees a path through hidden objects
    vis = Visibility(user)
    prefetch = [lookup for lookup in prefetch if not _masked_away(info.model, lookup, vis)]
    if prefetch:
        queryset = queryset.prefetch_related(*dict.fromkeys(prefetch))
    counts, stored = _visible_counts(info, names, user)
    if counts:
        queryset = queryset.annotate(**counts)
    if hasattr(queryset, "annotate_config_context_data"):
        queryset = (
            queryset.annotate_config_context_data(only_invalidated=True)
            if "config_context" in names
            else queryset.defer("_config_context_data")
        )
    objects = list(queryset)
    for obj in objects:
        for name in stored:
            setattr(obj, name, getattr(obj, f"visible_{name}"))
    mask(objects, vis)
    data = info.serializer(objects, many=True, fields=names, context={"request": None}).data
    # What the serializer loaded past the masked instances, and stand-ins for required relations.
    if not user.is_superuser:
        hidden = _hidden_related(vis, data)
        data = [_without(item, hidden) for item in data]
    for name in names:
        if (relation := _counted_relation(info.model, name)) is not None:
            for obj, item in zip(objects, data, strict=True):
                if name in item:
                    item[name] = _visible_count(getattr(obj, relation), vis)
    if withheld := withheld_fields(info, names, vis):
        data = [{key: None if key in withheld else value for key, value in item.items()} for item in data]
    return [_present(item) for item in data]


def _masked_away(model, lookup, vis):
    """A prefetch through a relation to a type the user may view nothing of: :func:`mask` replaces the
    relation whatever was loaded (reading only its id), so loading it would be wasted."""
    path = lookup.prefetch_through if isinstance(lookup, Prefetch) else lookup
    try:
        field = model._meta.get_field(path.split("__", 1)[0])
    except FieldDoesNotExist:
        return False
    if not (field.concrete and field.is_relation and (field.many_to_one or field.one_to_one)):
        return False
    allowed = vis.allowed(field.related_model)
    return allowed is not None and allowed.query.is_empty()


def _counted_relation(model, name):
    """For a model property like ``Interface.count_ipaddresses`` (counting every related object), the
    relation it counts: ``ip_addresses``. Found by what the property reads, for every model."""
    prop = getattr(model, name, None)
    if not name.startswith("count_") or not isinstance(prop, property):
        return None
    names = getattr(prop.fget, "__code__", None) and prop.fget.__code__.co_names
    return next((n for n in names or () if hasattr(getattr(model, n, None), "rel")), None)


def _visible_count(manager, vis):
    queryset = manager.all()
    if hasattr(queryset, "restrict") and vis.constrained(queryset.model):
        queryset = queryset.restrict(vis.user, "view")
    return queryset.count()


def _visible_counts(info, names, user):
    """Counts of related objects, counting only those this user may view: annotations for NetBox's
    counted fields (``device_count``…, as its ``count_related``), and the names of its stored counters
    (``interface_count``…, which count every object) that get a ``visible_<name>`` annotation instead."""
    counts, stored = {}, []

    def count(model, field_name):
        children = model.objects.all()
        if (allowed := viewable(model, user)) is not None:
            children = allowed
        counted = children.filter(**{field_name: OuterRef("pk")}).order_by().values(field_name)
        return Coalesce(Subquery(counted.annotate(c=Count("*")).values("c")), 0)

    for name in get_annotations_for_serializer(info.serializer, fields=names):
        relation = getattr(info.model, info.serializer._declared_fields[name].relation).field
        counts[name] = count(relation.model, relation.name)
    for name in names:
        try:
            field = info.model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if isinstance(field, CounterCacheField):
            model = apps.get_model(field.to_model_name)
            if viewable(model, user) is not None:
                counts[f"visible_{name}"] = count(model, field.to_field_name)
                stored.append(name)
    return counts, stored


def _related_type(model, path):
    """The exposed type at the end of a relation path like ``device`` or ``device_type__manufacturer``."""
    end = path_end(model, path)
    return object_type_for_model(end) if end is not None else None


def mask_for_display(objects, user):
    """Load what ``str()`` of these objects reads (NetBox's declared display prefetches), then mask it,
    so a display names only visible relations (an unnamed device, a virtual chassis member)."""
    if user.is_superuser:
        return
    load_display(objects)
    mask(objects, Visibility(user))
