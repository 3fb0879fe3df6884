"""The NetBox data tools: generic over every readable object type, always as the asking user.

Each handler takes ``(user, **arguments)`` and returns a JSON-ready dict, or raises ToolError
with a message the model can act on. Every queryset starts from ``.restrict(user, 'view')``,
so an object the user may not view is absent everywhere: results, counts, groups, search, change log
(``changelog.py``), and as a related object of one the user may view (an empty relation, as if it did
not exist). Rendering is in ``serialize.py``, filters in ``filters.py``, ordering in ``ordering.py``.
"""

from django.contrib.contenttypes.models import ContentType
from django.db.models import Case, Count, F, Value, When
from netbox.search.backends import search_backend

from ..conf import get_settings
from .filters import LOOKUP_SUFFIXES, apply_filters, filter_hint, usable_filters
from .ordering import ordered, related_visible
from .serialize import field_list, mask_for_display, serialize
from .types import (
    ToolError,
    existing_type_ids,
    get_object_type,
    is_secret_name,
    object_type_for_model,
    object_types as all_object_types,
)
from .visibility import Visibility, unusable_field

# Computed on demand and often large (the merged config context): returned only when asked for.
ON_REQUEST_FIELDS = ("config_context",)


def visible(info, user, for_serializer=False):
    """The type's objects this user may view (NetBox ObjectPermissions, constraints included).

    ``for_serializer`` starts from NetBox's REST viewset queryset, whose prefetches the serializer needs.
    """
    return (info.queryset() if for_serializer else info.model.objects.all()).restrict(user, "view")


def page_size(limit):
    """The page size: 20 by default, at most ``tool_max_results`` (the schema already refuses < 1)."""
    maximum = get_settings().tool_max_results
    if limit is None:
        return min(20, maximum)
    if limit > maximum:
        raise ToolError(f"limit must be between 1 and {maximum}; page with offset for more")
    return limit


def list_object_types(user, app=None):
    """The object types this user can view, grouped by app."""
    grouped = {}
    for label, info in all_object_types().items():
        if app and info.model._meta.app_label != app.lower():
            continue
        if not visible(info, user).query.is_empty():
            grouped.setdefault(info.model._meta.app_label, []).append(label.split(".", 1)[1])
    return {"count": sum(map(len, grouped.values())), "object_types": grouped}


def describe_object_type(user, object_type):
    """Fields and filters of one type, for building query_objects calls."""
    info = get_object_type(object_type)
    filters = {}
    for name, filt in usable_filters(info.filterset(queryset=info.model.objects.none())).items():
        if "__" in name:
            continue
        try:
            filters[name] = filter_hint(filt)
        except Exception:  # a plugin filter we cannot describe is still usable
            filters[name] = "text"
    return {
        "object_type": info.label,
        "name": info.verbose_name,
        "fields": list(info.fields),
        "brief_fields": list(info.brief_fields),
        "filters": filters,
        "filter_lookups": "most filters also accept suffixes: " + LOOKUP_SUFFIXES,
        "example": {"object_type": info.label, "filters": {"q": "text to search"}, "fields": list(info.brief_fields)},
    }


def query_objects(user, object_type, filters=None, fields=None, ordering=None, limit=None, offset=0):
    """A page of objects, with the total count and whether more exist."""
    info = get_object_type(object_type)
    limit = page_size(limit)
    names = field_list(info, fields, info.brief_fields)
    queryset = ordered(
        info, apply_filters(info, visible(info, user, for_serializer=True), filters, user), ordering, user
    )
    total = queryset.count()
    results = serialize(info, queryset[offset : offset + limit], names, user) if offset < total else []
    return {
        "object_type": info.label,
        "count": total,
        "offset": offset,
        "returned": len(results),
        "has_more": offset + len(results) < total,
        "results": results,
    }


def get_object(user, object_type, id, fields=None):
    """One object by id; a hidden object reads exactly like a missing one."""
    info = get_object_type(object_type)
    names = field_list(info, fields, [f for f in info.fields if f not in ON_REQUEST_FIELDS])
    results = serialize(info, visible(info, user, for_serializer=True).filter(pk=id), names, user)
    if not results:
        raise ToolError(f"{info.label} with id {id} not found")
    return {"object_type": info.label, "object": results[0]}


def search(user, query, object_types=None, limit=None):
    """NetBox's global search, restricted to what the user may view."""
    limit = page_size(limit)
    if not query.strip():
        raise ToolError("query must not be empty")
    types = [get_object_type(t) for t in object_types] if object_types else list(all_object_types().values())
    allowed = list(existing_type_ids(t.model for t in types).values())
    # The backend drops objects the user may not view (and reads no types as all types: a type without its
    # row has no entries); matches on hidden fields are dropped here.
    found = search_backend.search(query.strip(), user=user, object_types=allowed) if allowed else []
    hits = [hit for hit in found if not is_secret_name(hit.field)]
    if not user.is_superuser:  # the indexed name may name hidden relations: rendered again, masked
        mask_for_display([hit.object for hit in hits[:limit]], user)
    results = [
        {
            "object_type": object_type_for_model(type(hit.object)).label,
            "id": hit.object.pk,
            "display": hit.name if user.is_superuser else str(hit.object),
            "url": hit.object.get_absolute_url() if hasattr(hit.object, "get_absolute_url") else None,
            "matched_field": hit.field,
            "value": str(hit.value)[:200],
        }
        for hit in hits[:limit]
    ]
    return {"query": query, "count": len(hits), "has_more": len(hits) > limit, "results": results}


def count_objects(user, object_type, filters=None, group_by=None, limit=None):
    """How many objects match, optionally per value of one field ("devices per site")."""
    info = get_object_type(object_type)
    queryset = apply_filters(info, visible(info, user), filters, user)
    result = {"object_type": info.label, "count": queryset.count()}
    if not group_by:
        return result
    limit = page_size(limit)
    field = info.model_field(group_by)
    unusable_field(info, group_by, Visibility(user), "group by")
    # Objects whose related object (at any step of the path) is hidden group with those that have
    # none, as if it did not exist.
    value = F(group_by)
    if (shown := related_visible(info.model, group_by, user)) is None:
        value = Value(None, output_field=field)
    elif shown:
        value = Case(When(shown, then=value), default=Value(None))
    rows = list(
        queryset.order_by()
        .values(grouped_by=value)
        .annotate(count=Count("pk", distinct=True))
        .order_by("-count", "grouped_by")[: limit + 1]
    )
    related = {}
    if field.is_relation:
        ids = [r["grouped_by"] for r in rows if r["grouped_by"] is not None]
        related = {o.pk: o for o in field.related_model.objects.filter(pk__in=ids)}
        mask_for_display(list(related.values()), user)
    choices = dict(field.flatchoices) if getattr(field, "choices", None) else {}
    groups = []
    for row in rows[:limit]:
        value = row["grouped_by"]
        shown = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)  # IPNetwork…
        group = {"value": shown, "count": row["count"]}
        if isinstance(related.get(value), ContentType):
            group["display"] = f"{related[value].app_label}.{related[value].model}"
        elif value in related:
            group["display"] = str(related[value])
            group["url"] = related[value].get_absolute_url()
        elif value in choices:
            group["display"] = str(choices[value])
        groups.append(group)
    result.update(group_by=group_by, groups=groups, has_more=len(rows) > limit)
    return result
