"""The NetBox data tools: generic over every readable object type, always as the asking user.

Each handler takes ``(user, **arguments)`` and returns a JSON-ready dict, or raises ToolError
with a message the model can act on. Every queryset starts from ``.restrict(user, 'view')``,
so an object the user may not view is absent everywhere: results, counts, groups, search, change log,
and as a related object of one the user may view (an empty relation, as if it did not exist).
"""

import difflib
import json
import re
from collections import defaultdict
from datetime import datetime, time, timedelta
from functools import lru_cache

import django_filters
from core.models import ObjectChange, ObjectType
from django import forms
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
    prefetch_related_objects,
)
from django.db.models.expressions import OrderBy
from django.db.models.functions import Coalesce
from django.http import QueryDict
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from netbox.search.backends import search_backend
from utilities.api import get_annotations_for_serializer, get_prefetches_for_serializer
from utilities.fields import CounterCacheField
from utilities.views import get_viewname

from ..conf import get_settings
from .types import (
    ToolError,
    get_object_type,
    is_secret_name,
    object_type_for_model,
    object_types as all_object_types,
    scrub,
)
from .visibility import (
    Visibility,
    check_reads,
    derived_columns,
    generic_relations,
    is_placeholder,
    mask,
    unusable_field,
    viewable,
    withheld_fields,
)

MODEL_CHOICE_FILTERS = (django_filters.ModelChoiceFilter, django_filters.ModelMultipleChoiceFilter)
LOOKUP_SUFFIXES = (
    "__n (not), __ic (contains), __nic, __isw (starts with), __iew, __ie (iexact), "
    "__gt/__gte/__lt/__lte (numbers, dates), __empty (true/false)"
)
MAX_FILTER_VALUES = 50
MAX_FILTERS = 20
# Computed on demand and often large (the merged config context): returned only when asked for.
ON_REQUEST_FIELDS = ("config_context",)
HINTS = (
    ((forms.IntegerField, forms.DecimalField, forms.FloatField), "number"),
    ((forms.DateField, forms.DateTimeField), "date"),
    ((forms.BooleanField, forms.NullBooleanField), "boolean"),
)


# ----------------------------------------------------------------------------------------------
# Shared helpers


def visible(info, user, for_serializer=False):
    """The type's objects this user may view (NetBox ObjectPermissions, constraints included).

    ``for_serializer`` starts from NetBox's REST viewset queryset, whose prefetches the serializer needs.
    """
    return (info.queryset() if for_serializer else info.model.objects.all()).restrict(user, "view")


def _limit(limit):
    """The page size: 20 by default, at most ``tool_max_results`` (the schema already refuses < 1)."""
    maximum = get_settings().tool_max_results
    if limit is None:
        return min(20, maximum)
    if limit > maximum:
        raise ToolError(f"limit must be between 1 and {maximum}; page with offset for more")
    return limit


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


def _field_list(info, fields, default):
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
    vis = Visibility(user)
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
    for part in path.split("__"):
        try:
            model = model._meta.get_field(part).related_model
        except FieldDoesNotExist:
            return None
        if model is None:  # a generic relation
            return None
    return object_type_for_model(model)


def usable_filters(filterset) -> dict:
    """The FilterSet's filters minus those on secret fields or on types that are not exposed."""

    def usable(name, filt):
        model = getattr(getattr(filt, "queryset", None), "model", None)
        return not is_secret_name(name) and (
            model is None or issubclass(model, ContentType) or object_type_for_model(model) is not None
        )

    return {name: filt for name, filt in filterset.filters.items() if usable(name, filt)}


def _filter_values(name, value):
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_FILTER_VALUES:
        raise ToolError(f"filter '{name[:60]}': give 1 to {MAX_FILTER_VALUES} values")
    out = []
    for v in values:
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif v is None:
            out.append("null")
        elif isinstance(v, (int, float, str)):
            out.append(str(v))
        else:
            raise ToolError(f"filter '{name[:60]}': values must be strings, numbers, booleans or a list of them")
    return out


def apply_filters(info, queryset, filters, user):
    """Filter with the type's own NetBox FilterSet; unknown names and bad values are errors, never ignored.

    A related object that does not exist and one the user may not view must read the same: model-choice
    filters choose only among objects the user may view, and a value matching none of them simply
    matches nothing (it is not an error).
    """
    if not filters:
        return queryset
    if not isinstance(filters, dict):
        raise ToolError('filters must be an object like {"site": "ams1", "status": ["active", "planned"]}')
    if len(filters) > MAX_FILTERS:
        raise ToolError(f"give at most {MAX_FILTERS} filters")
    data = QueryDict(mutable=True)
    for name, value in filters.items():
        data.setlist(name, _filter_values(name, value))

    filterset_class = info.filterset_for(frozenset(data))
    filterset = filterset_class(data, queryset=queryset)
    unknown = [n for n in filters if n not in usable_filters(filterset)]
    if unknown:
        known = usable_filters(info.filterset(queryset=info.model.objects.none()))
        hints = {n[:60]: difflib.get_close_matches(n[:60], known, n=3) for n in unknown[:3]}
        hint = "; ".join(f"'{n}' (did you mean {', '.join(m)}?)" if m else f"'{n}'" for n, m in hints.items())
        hint += f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise ToolError(f"unknown filter {hint} for {info.label}; describe_object_type lists its filters")

    for _ in range(MAX_FILTER_VALUES * len(filters)):
        # Only the filters in use (custom field filters are added to every instance): django-filters
        # otherwise builds a form field for, and runs, each of them.
        filterset.filters = {name: filt for name, filt in filterset.filters.items() if name in data}
        for filt in filterset.filters.values():  # the instance's own copies: the class keeps its querysets
            if isinstance(filt, MODEL_CHOICE_FILTERS) and hasattr(filt.queryset, "restrict"):
                filt.queryset = filt.queryset.restrict(user, "view")
        if filterset.is_valid():
            if (text := _check_reads(info, filterset, user)) is not None:
                filterset.form.cleaned_data.pop("q")
                return filterset.qs.filter(_own_text_search(info, text, user))
            return filterset.qs
        errors = filterset.form.errors.as_data()
        bad = {
            n: e
            for n, e in errors.items()
            if not (isinstance(filterset.filters.get(n), MODEL_CHOICE_FILTERS) and e[0].code == "invalid_choice")
        }
        if bad:
            raise ToolError(
                "; ".join(
                    f"filter '{n[:60]}': {' '.join(m for err in e for m in err.messages)[:200]}" for n, e in bad.items()
                )
            )
        for name, errs in errors.items():
            missing = str((errs[0].params or {}).get("value"))
            remaining = [v for v in data.getlist(name) if v != missing]
            if remaining:
                data.setlist(name, remaining)
            elif filterset.filters[name].exclude:  # "not one of (objects that do not exist)": no condition
                del data[name]
            else:
                return queryset.none()
        if not data:
            return queryset
        filterset = filterset_class(data, queryset=queryset)
    return queryset.none()


def _check_reads(info, filterset, user):
    """Each filter, built alone, must read only what the user may view (see visibility.check_reads).

    Returns the ``q`` text when NetBox's own search of the type would read more: it is then replaced by
    a search of the object's own text fields (``_own_text_search``) rather than refused."""
    vis, replaced = Visibility(user), None
    for name, filt in filterset.filters.items():
        value = filterset.form.cleaned_data.get(name)
        try:
            probe = filt.filter(info.model.objects.order_by(), value)  # no default ordering's joins
        except (ValueError, TypeError, FieldDoesNotExist) as e:  # e.g. "null" where NetBox cannot use it
            raise ToolError(f"filter '{name[:60]}' cannot be used with this value ({str(e)[:100]})") from None
        choice = _choice_model(filt)
        try:
            check_reads(info, name, probe, vis, choice)
        except ToolError:
            if name != "q":
                raise
            replaced = value
    return replaced


def _choice_model(filt):
    """The model a model-choice filter picks visible objects from, when its SQL compares with exactly
    those (by id or a unique field); matching by a name many objects share (interface=et0) would also
    match hidden ones."""
    if not isinstance(filt, MODEL_CHOICE_FILTERS):
        return None
    model = filt.queryset.model._meta.concrete_model
    to_field = filt.extra.get("to_field_name")
    try:
        return model if to_field is None or model._meta.get_field(to_field).unique else None
    except FieldDoesNotExist:
        return None


def _own_text_search(info, text, user):
    """``q`` over the object's own text fields that the tools return (no relations, no derived values)."""
    derived = derived_columns(info.model, Visibility(user))
    condition = Q()
    for field in info.model._meta.concrete_fields:
        if (
            isinstance(field, (CharField, TextField))
            and not field.name.startswith("_")
            and field.name not in derived
            and not info.is_hidden(field.name)
            and not field.choices
        ):
            condition |= Q(**{f"{field.name}__icontains": text})
    return condition if condition else Q(pk__in=[])


def _ordering(info, queryset, ordering, user):
    """Order by the given field paths, or the type's default order. Only visible data decides: through a
    related object the user may not view, a value sorts as if the relation were empty, and values NetBox
    derives from hidden objects (a tree's sort path…) give way to the object's name (or are refused
    when asked for)."""
    vis = Visibility(user)
    if ordering is None:
        terms = []
        for term in queryset.query.order_by or info.model._meta.ordering:
            if isinstance(term, str):
                terms += _order_terms(info.model, term.lstrip("-"), term.startswith("-"), vis, user)
            elif isinstance(term, OrderBy) and isinstance(term.expression, F):
                terms += _order_terms(
                    info.model,
                    term.expression.name,
                    term.descending,
                    vis,
                    user,
                    nulls_first=term.nulls_first,
                    nulls_last=term.nulls_last,
                )
            else:
                terms.append(term)  # an expression over the object's own columns (e.g. a collation)
        return queryset.order_by(*terms, "pk")
    terms = []
    for name in ordering:
        path, descending = name.lstrip("-"), name.startswith("-")
        info.model_field(path)
        unusable_field(info, path, vis, "order by")
        terms += _order_terms(info.model, path, descending, vis, user)
    return queryset.order_by(*terms, "pk")


def _order_terms(model, path, descending, vis, user, depth=0, **nulls):
    """SQL ordering for one field path. A relation sorts by its model's own ordering, as Django does."""
    try:
        field = _path_field(model, path)
    except FieldDoesNotExist:
        return []
    if field.is_relation and depth < 3:
        related = field.related_model
        own = [o for o in related._meta.ordering if isinstance(o, str)] or ["pk"]
        return [
            term
            for o in own
            for term in _order_terms(
                model, f"{path}__{o.lstrip('-')}", descending != o.startswith("-"), vis, user, depth + 1, **nulls
            )
        ]
    owner = _path_owner(model, path)
    if field.name in derived_columns(owner, vis):
        if not any(f.name == "name" for f in owner._meta.concrete_fields):
            return []
        path = path[: -len(field.name)] + "name"  # e.g. a tree's sort path: its own name instead
    if (shown := _related_visible(model, path, user)) is None:
        return []  # all hidden: all sort alike (and SQL refuses to order by a constant)
    value = F(path) if not shown else Case(When(shown, then=F(path)), default=Value(None))
    return [value.desc(**nulls) if descending else value.asc(**nulls)]


def _path_field(model, path):
    for part in path.split("__"):
        field = model._meta.get_field(part)
        model = field.related_model if field.is_relation else model
    return field


def _path_owner(model, path):
    """The model whose field ends ``path``."""
    for part in path.split("__")[:-1]:
        model = model._meta.get_field(part).related_model
    return model


# ----------------------------------------------------------------------------------------------
# The tools


def list_object_types(user, app=None):
    """The object types this user can view, grouped by app."""
    grouped = {}
    for label, info in all_object_types().items():
        if app and info.model._meta.app_label != app.lower():
            continue
        if not visible(info, user).query.is_empty():
            grouped.setdefault(info.model._meta.app_label, []).append(label.split(".", 1)[1])
    return {"count": sum(map(len, grouped.values())), "object_types": grouped}


def _filter_hint(filt):
    """A short value hint for one filter: 'id', 'slug', 'choice: a|b', 'number', 'date', 'boolean', 'text'."""
    if isinstance(filt, MODEL_CHOICE_FILTERS):
        return filt.extra.get("to_field_name") or "id"
    field_class = filt.field_class
    if issubclass(field_class, forms.ChoiceField) and filt.extra.get("choices"):
        values = []
        for value, label in filt.field.choices:
            if isinstance(label, (list, tuple)):  # an option group
                values.extend(str(v) for v, _ in label)
            elif value not in ("", None):
                values.append(str(value))
        return "choice: " + "|".join(values[:25])
    for classes, hint in HINTS:
        if issubclass(field_class, classes):
            return hint
    return "text"


def describe_object_type(user, object_type):
    """Fields and filters of one type, for building query_objects calls."""
    info = get_object_type(object_type)
    filters = {}
    for name, filt in usable_filters(info.filterset(queryset=info.model.objects.none())).items():
        if "__" in name:
            continue
        try:
            filters[name] = _filter_hint(filt)
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
    limit = _limit(limit)
    names = _field_list(info, fields, info.brief_fields)
    queryset = _ordering(
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
    names = _field_list(info, fields, [f for f in info.fields if f not in ON_REQUEST_FIELDS])
    results = serialize(info, visible(info, user, for_serializer=True).filter(pk=id), names, user)
    if not results:
        raise ToolError(f"{info.label} with id {id} not found")
    return {"object_type": info.label, "object": results[0]}


def search(user, query, object_types=None, limit=None):
    """NetBox's global search, restricted to what the user may view."""
    limit = _limit(limit)
    if not query.strip():
        raise ToolError("query must not be empty")
    types = [get_object_type(t) for t in object_types] if object_types else list(all_object_types().values())
    allowed = ObjectType.objects.get_for_models(*(t.model for t in types)).values()
    # The backend drops objects the user may not view; matches on hidden fields are dropped here.
    hits = [
        hit
        for hit in search_backend.search(query.strip(), user=user, object_types=list(allowed))
        if not is_secret_name(hit.field)
    ]
    if not user.is_superuser:  # the indexed name may name hidden relations: rendered again, masked
        _mask_for_display([hit.object for hit in hits[:limit]], user)
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
    limit = _limit(limit)
    field = info.model_field(group_by)
    unusable_field(info, group_by, Visibility(user), "group by")
    # Objects whose related object (at any step of the path) is hidden group with those that have
    # none, as if it did not exist.
    value = F(group_by)
    if (shown := _related_visible(info.model, group_by, user)) is None:
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
        _mask_for_display(list(related.values()), user)
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


def _mask_for_display(objects, user):
    """Load what ``str()`` of these objects reads (NetBox's declared display prefetches), then mask it,
    so a display names only visible relations (an unnamed device, a virtual chassis member)."""
    if user.is_superuser:
        return
    by_type = defaultdict(list)
    for obj in objects:
        by_type[type(obj)].append(obj)
    for model, group in by_type.items():
        if (info := object_type_for_model(model)) is not None and (lookups := info.display_prefetches()):
            prefetch_related_objects(group, *dict.fromkeys(lookups))
    mask(objects, Visibility(user))


def _related_visible(model, path, user) -> Q | None:
    """The condition that every related object along ``path`` (``device_type__manufacturer``) is one
    the user may view: empty when they may view all of them, None when they may view none."""
    condition, steps = Q(), []
    for part in path.split("__"):
        field = model._meta.get_field(part)
        steps.append(part)
        if not field.is_relation:
            break
        model = field.related_model
        if (allowed := viewable(model, user)) is not None:
            if allowed.query.is_empty():
                return None
            condition &= Q(**{f"{'__'.join(steps)}__in": allowed.values("pk")})
    return condition


_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")


def _when(value, name, end=False):
    """ISO date/datetime, or relative like '24h', '7d' (before now)."""
    if value is None:
        return None
    if m := _RELATIVE.match(str(value)):
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m[2]]
        return timezone.now() - timedelta(**{unit: int(m[1])})
    try:
        moment = parse_datetime(str(value))
        if moment is None and (day := parse_date(str(value))):
            moment = datetime.combine(day, time.max if end else time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise ToolError(
            f"{name} must be an ISO date/time like 2026-01-31 or 2026-01-31T08:00:00Z, or relative like 24h, 7d"
        )
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def changelog_queryset(user):
    """Change records the user may see: NetBox's own restriction on ObjectChange (as its change log
    views apply) AND the changed object visible to the user. Changes of a deleted object stay
    visible only to users who may view every object of its type (constraints cannot be checked)."""
    queryset = ObjectChange.objects.valid_models().restrict(user, "view")
    if queryset.query.is_empty():
        return queryset
    infos = list(all_object_types().values())
    type_ids = {m: ct.pk for m, ct in ContentType.objects.get_for_models(*(i.model for i in infos)).items()}
    unconstrained, condition = [], Q()
    for info in infos:
        base = info.model.objects.all()
        allowed = base.restrict(user, "view")
        if allowed is base:
            unconstrained.append(type_ids[info.model])
        elif not allowed.query.is_empty():
            condition |= Q(changed_object_type_id=type_ids[info.model], changed_object_id__in=allowed.values("pk"))
    return queryset.filter(condition | Q(changed_object_type_id__in=unconstrained))


def _may_view_id(info, user, object_id) -> bool:
    """The object is one the user may view; a deleted one only for users who may view the whole type
    (as for changes of deleted objects, its constraints cannot be checked)."""
    if visible(info, user).filter(pk=object_id).exists():
        return True
    return viewable(info.model, user) is None and not info.model.objects.filter(pk=object_id).exists()


def _change(change, vis):
    model = change.changed_object_type.model_class()
    info = object_type_for_model(model)
    obj = {"object_type": info.label, "id": change.changed_object_id, "display": change.object_repr}
    if change.action != "delete":
        obj["url"] = reverse(get_viewname(model), kwargs={"pk": change.changed_object_id})
    diff = {side: _visible_snapshot(info, values, vis) for side, values in change.diff().items()}
    changes = {}
    for key in sorted(set(diff["pre"]) | set(diff["post"])):
        before, after = diff["pre"].get(key), diff["post"].get(key)
        if info.is_hidden(key) or before == after or (before in (None, "", [], {}) and after in (None, "", [], {})):
            continue
        changes[key] = {"before": _short(scrub(before)), "after": _short(scrub(after))}
    return {
        "id": change.pk,
        "time": change.time.isoformat(),
        "action": change.action,
        "user": change.user_name,
        "object": obj,
        "message": change.message,
        "changes": changes,
        "url": change.get_absolute_url(),
    }


def _visible_snapshot(info, data, vis):
    """A change record's values as the user may see them: ids of hidden related objects (single, many,
    generic) and hidden tags become absent, and values derived from hidden objects are left out."""
    data = dict(data or {})
    if vis.user.is_superuser:
        return data
    from extras.models import Tag

    model, derived = info.model, derived_columns(info.model, vis)
    for field in model._meta.get_fields():
        if field.name not in data:
            continue
        value = data[field.name]
        if field.name in derived:
            del data[field.name]
        elif field.is_relation and field.related_model is not None and (field.many_to_one or field.one_to_one):
            if isinstance(value, int) and vis.hidden(field.related_model, [value]):
                data[field.name] = None
        elif field.is_relation and field.many_to_many and isinstance(value, list):
            ids = [v for v in value if isinstance(v, int)]
            hidden = vis.hidden(field.related_model, ids) if field.related_model is not None else set()
            data[field.name] = [v for v in value if v not in hidden]
    if isinstance(data.get("tags"), list) and vis.constrained(Tag):
        names = [t for t in data["tags"] if isinstance(t, str)]
        shown = set(vis.allowed(Tag).filter(name__in=names).values_list("name", flat=True))
        data["tags"] = [t for t in data["tags"] if t in shown]
    for field in generic_relations(model):
        ct_id, pk = data.get(field.ct_field), data.get(field.fk_field)
        if isinstance(ct_id, int) and isinstance(pk, int):
            target = ContentType.objects.get_for_id(ct_id).model_class()
            if target is not None and vis.hidden(target, [pk]):
                data[field.ct_field] = data[field.fk_field] = None
    return data


def _short(value, size=200):
    """A changelog value, cut to ``size`` characters (structured values as JSON text)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:size] + "…" if len(text) > size else value


def get_changelog(
    user, object_type=None, object_id=None, since=None, until=None, action=None, user_name=None, limit=None, offset=0
):
    """Changes (newest first) to one object, one type, or everything in a time window."""
    limit = _limit(limit)
    queryset = changelog_queryset(user)
    if object_id is not None and object_type is None:
        raise ToolError("object_id needs object_type")
    if object_type is not None:
        info = get_object_type(object_type)
        type_id = ContentType.objects.get_for_model(info.model).pk
        if object_id is not None:
            changes = Q(changed_object_type_id=type_id, changed_object_id=object_id)
            if _may_view_id(info, user, object_id):  # its children's changes name it: only then
                changes |= Q(related_object_type_id=type_id, related_object_id=object_id)
            queryset = queryset.filter(changes)
        else:
            queryset = queryset.filter(changed_object_type_id=type_id)
    start, end = _when(since, "since"), _when(until, "until", end=True)
    if start:
        queryset = queryset.filter(time__gte=start)
    if end:
        queryset = queryset.filter(time__lte=end)
    if action:
        queryset = queryset.filter(action=action)
    if user_name:
        queryset = queryset.filter(user_name=user_name)
    total = queryset.count()
    page = queryset.select_related("changed_object_type").order_by("-time", "-pk")[offset : offset + limit]
    vis = Visibility(user)
    changes = [_change(c, vis) for c in page]
    return {
        "count": total,
        "offset": offset,
        "returned": len(changes),
        "has_more": offset + len(changes) < total,
        "since": start.isoformat() if start else None,
        "until": end.isoformat() if end else None,
        "changes": changes,
    }
