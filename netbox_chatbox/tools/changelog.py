"""The change log tool: NetBox's ObjectChange records of objects the user may view, with diffs that
name only what the user may view."""

import json
import re
from datetime import datetime, time, timedelta

from core.models import ObjectChange
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from utilities.views import get_viewname

from .handlers import page_size, visible
from .types import (
    ToolError,
    existing_type_ids,
    get_object_type,
    object_type_for_model,
    object_types as all_object_types,
    scrub,
)
from .visibility import Visibility, derived_columns, generic_relations, viewable

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


def changelog_queryset(user, type_ids):
    """Change records the user may see: NetBox's own restriction on ObjectChange (as its change log
    views apply) AND the changed object visible to the user. Changes of a deleted object stay
    visible only to users who may view every object of its type (constraints cannot be checked).

    Only records of the readable types, by ``type_ids`` ({model: its existing object type's id}: NetBox's
    ``valid_models()`` would INSERT missing rows, which fails in the tools' read-only transaction)."""
    queryset = ObjectChange.objects.restrict(user, "view")
    if queryset.query.is_empty():
        return queryset
    unconstrained, condition = [], Q()
    for info in all_object_types().values():
        if info.model not in type_ids:
            continue  # no row, no change records
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
    limit = page_size(limit)
    type_ids = existing_type_ids(info.model for info in all_object_types().values())
    queryset = changelog_queryset(user, type_ids)
    if object_id is not None and object_type is None:
        raise ToolError("object_id needs object_type")
    if object_type is not None:
        info = get_object_type(object_type)
        type_id = type_ids.get(info.model)
        if type_id is None:
            queryset = queryset.none()  # no row, no change records
        elif object_id is not None:
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
