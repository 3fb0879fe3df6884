"""One mechanism, for every model, that makes an object a user may not view read like a missing one.

NetBox's serializers, model properties (``__str__``, ``Interface.mac_address``, cable paths) and
filters follow relations freely, to objects whatever their permissions. Rather than patching each,
the tools work per call with a :class:`Visibility` (which objects of each model the user may view,
asked once per model and id) and

- :func:`mask` the loaded model instances before anything renders them: a relation to a hidden object
  is set to ``None`` (generic ones too, with their ``*_type``/``*_id``), hidden objects drop out of
  prefetched lists, and a cable path through a hidden object is no path; so every display string,
  property and serializer field computes from visible objects only;
- :func:`withheld_fields`: values NetBox stores or computes from *other* objects of the same or another
  type that masking cannot reach (a prefix's depth and child count, a tree's sort path, counters), for
  users who may not view all of those objects;
- ``reads.check_reads``: what a filter reads, refused when it would read through objects the user may
  not view all of, or values the tools withhold.
"""

import copy
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from django.apps import apps
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from utilities.fields import CounterCacheField

from .types import ToolError, object_type_for_model, object_types

# Columns a model stores about its place among *other* objects of its own type: a hidden parent or
# sibling changes them (MPTT/tree fields, a prefix's depth and number of children, a tree's sort path).
TREE_COLUMNS = frozenset({"_depth", "_children", "sort_path", "lft", "rght", "tree_id", "level"})


# Within one tool call (``one_call``): {(model, user): viewable(model, user)}. A call asks about the same
# models many times (filter checks, ordering, masking, derived columns), and NetBox rebuilds the permission
# conditions on every restrict().
_viewable = ContextVar("chatbox_viewable", default=None)


@contextmanager
def one_call():
    """Share what the user may view between the steps of one tool call (permissions read at its start)."""
    token = _viewable.set({})
    try:
        yield
    finally:
        _viewable.reset(token)


def viewable(model, user):
    """The model's objects the user may view, or None when that is all of them (no query needed).

    Models outside NetBox's permissions (content/object types, e.g. ``assigned_object_type``) have no
    hidden objects."""
    known = _viewable.get()
    if known is not None and (model, user) in known:
        allowed = known[(model, user)]
        return None if allowed is None else allowed.all()  # a copy: no result cache is shared
    everything = model.objects.all()
    allowed = everything.restrict(user, "view") if hasattr(everything, "restrict") else everything
    allowed = None if allowed is everything else allowed
    if known is not None:
        known[(model, user)] = allowed
    return allowed


class Visibility:
    """Which objects one user may view, for one tool call: one query per model for the ids asked about,
    none for models they may view entirely (and none at all for superusers)."""

    def __init__(self, user):
        self.user = user
        self._viewable = {}
        self._allowed = {}
        self._shown = defaultdict(dict)  # {model: {pk: NetBox lets the user view it}}
        self._displays = {}

    def viewable(self, model):
        """NetBox's view permission: the model's objects the user may view, or None when that is all of them."""
        model = model._meta.concrete_model
        if model not in self._viewable:
            self._viewable[model] = None if self.user.is_superuser else viewable(model, self.user)
        return self._viewable[model]

    def allowed(self, model):
        """The model's objects the user may view, or None when that is all of them, or when the tools do
        not expose the model (its fields are refused, so nothing of it is shown)."""
        model = model._meta.concrete_model
        if model not in self._allowed:
            self._allowed[model] = self.viewable(model) if object_type_for_model(model) is not None else None
        return self._allowed[model]

    def constrained(self, model) -> bool:
        return self.allowed(model) is not None

    def hidden(self, model, ids) -> set:
        """The ids among ``ids`` of objects the user may not view (of a model the tools expose)."""
        return self._unseen(model._meta.concrete_model, self.allowed(model), ids)

    def visible(self, model, ids) -> set:
        """The ids among ``ids`` of objects NetBox lets the user view, whether or not the tools expose the model."""
        ids = set(ids)
        return ids - self._unseen(model._meta.concrete_model, self.viewable(model), ids)

    def _unseen(self, model, allowed, ids) -> set:
        if allowed is None:
            return set()
        known = self._shown[model]  # the same answer for hidden() and visible(): NetBox's permission
        if unknown := {pk for pk in ids if pk not in known}:
            # No permission at all is an empty queryset: nothing to ask the database.
            shown = (
                set() if allowed.query.is_empty() else set(allowed.filter(pk__in=unknown).values_list("pk", flat=True))
            )
            known.update((pk, pk in shown) for pk in unknown)
        return {pk for pk in ids if not known[pk]}

    def display(self, obj) -> str:
        """``str(obj)`` as this user may read it: built from a masked copy, so a name made from relations (an
        unnamed device's type) reads only objects they may view; once per object and call."""
        if self.user.is_superuser:
            return str(obj)
        key = (type(obj), obj.pk)
        if obj.pk is None or key not in self._displays:
            shown = copy.deepcopy(obj)
            load_display([shown])
            mask([shown], self)
            if obj.pk is None:
                return str(shown)
            self._displays[key] = str(shown)
        return self._displays[key]

    def any_constrained(self) -> bool:
        """The user may not view every object of some exposed type."""
        return any(self.constrained(info.model) for info in object_types().values())


def load_display(objects):
    """Load what ``str()`` of these objects reads (NetBox's declared display prefetches), before masking:
    a relation ``str()`` loaded only afterwards (a device's type's manufacturer) would escape the mask."""
    by_type = defaultdict(list)
    for obj in objects:
        by_type[type(obj)].append(obj)
    for model, group in by_type.items():
        if (info := object_type_for_model(model)) is not None and (lookups := info.display_prefetches()):
            models.prefetch_related_objects(group, *dict.fromkeys(lookups))


def generic_relations(model):
    """The model's generic foreign keys (``scope``, ``assigned_object``…)."""
    return [field for field in _relations(model) if isinstance(field, GenericForeignKey)]


@lru_cache(maxsize=1024)
def _relations(model):
    """The model's forward single relations: concrete FKs/one-to-ones and generic foreign keys."""
    out = []
    for field in model._meta.get_fields():
        if (
            isinstance(field, GenericForeignKey)
            or field.concrete
            and field.is_relation
            and (field.many_to_one or field.one_to_one)
        ):
            out.append(field)
    return tuple(out)


def _generic_target(obj, field):
    ct_id = getattr(obj, model_attname(type(obj), field.ct_field))
    pk = getattr(obj, field.fk_field)
    if ct_id is None or pk is None:
        return None, None
    return ContentType.objects.get_for_id(ct_id).model_class(), pk


@lru_cache(maxsize=1024)
def model_attname(model, name):
    return model._meta.get_field(name).attname


def mask(objects, vis: Visibility):
    """Make the loaded instances (and every instance cached on them) read as if hidden objects did not
    exist: relations to hidden objects become None, hidden objects leave prefetched lists, link records
    (e.g. a cable termination) whose required relation is hidden leave them too, and a cable path
    through a hidden object becomes an empty, inactive path. Nothing is saved."""
    if vis.user.is_superuser:
        return
    from dcim.models import CablePath

    objects = list(objects)
    refs, slots, lists, paths, seen_objects = defaultdict(set), [], [], [], []
    seen, stack = set(), list(objects)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or not isinstance(obj, models.Model):
            continue
        seen.add(id(obj))
        seen_objects.append(obj)
        for field in _relations(type(obj)):
            if isinstance(field, GenericForeignKey):
                model, pk = _generic_target(obj, field)
                nullable = type(obj)._meta.get_field(field.ct_field).null
            else:
                model, pk, nullable = field.related_model, getattr(obj, field.attname), field.null
            if model is None or pk is None:
                continue
            if model is CablePath:
                paths.append((obj, field))
            refs[model._meta.concrete_model].add(pk)
            slots.append((obj, field, model._meta.concrete_model, pk, nullable))
            if field.is_cached(obj) and (related := field.get_cached_value(obj)) is not None:
                stack.append(related)
        for cached in getattr(obj, "_prefetched_objects_cache", {}).values():
            items = list(cached) if cached._result_cache is None else cached._result_cache
            lists.append(cached)
            for item in items:
                if isinstance(item, models.Model):
                    refs[type(item)._meta.concrete_model].add(item.pk)
                    stack.append(item)
    # A cable path is hidden when any object along it is.
    for obj, field in paths:
        if (path := field.get_cached_value(obj, None)) is not None:
            for node in path._nodes or ():
                ct_id, pk = (int(part) for part in str(node).split(":"))
                refs[ContentType.objects.get_for_id(ct_id).model_class()].add(pk)
    hidden = {model: vis.hidden(model, ids) for model, ids in refs.items() if model is not None}
    roots = {id(obj) for obj in objects}
    for obj in seen_objects:  # nested objects' stored counters (the top-level ones are recounted)
        if id(obj) not in roots:
            for name, counted in _derived_fields(type(obj))[0]:
                if vis.constrained(counted):
                    setattr(obj, name, None)
    dropped, placeholders = set(), {}
    for obj, field, model, pk, nullable in slots:
        if pk in hidden.get(model, ()):
            if nullable:
                setattr(obj, field.name, None)
            elif object_type_for_model(type(obj)) is None:
                dropped.add(id(obj))  # a link record (cable termination…) to a hidden object
            elif not isinstance(field, GenericForeignKey):
                # A required relation cannot be None: an empty, unsaved stand-in (rendered as null).
                field.set_cached_value(obj, _placeholder(model, placeholders))
    for cached in lists:
        cached._result_cache = [
            item
            for item in cached._result_cache
            if not (
                isinstance(item, models.Model)
                and (id(item) in dropped or item.pk in hidden.get(type(item)._meta.concrete_model, ()))
            )
        ]
    for obj, field in paths:
        path = field.get_cached_value(obj, None)
        if path is not None and any(_node_hidden(node, hidden) for node in path._nodes or ()):
            # Kept as a path, not None: NetBox reloads a cabled endpoint's missing path from the database.
            field.set_cached_value(obj, CablePath(pk=path.pk, path=[], is_active=False, is_complete=False))
            obj.__dict__["connected_endpoints"] = []


def _placeholder(model, made, depth=0):
    """An empty unsaved instance of ``model`` (no id, blank fields), with stand-ins for its own required
    relations, so that code reading through it (``Device.__str__``) finds nothing rather than failing."""
    if model not in made:
        made[model] = obj = model()
        if depth < 2:
            for field in _relations(model):
                if not isinstance(field, GenericForeignKey) and not field.null:
                    field.set_cached_value(obj, _placeholder(field.related_model, made, depth + 1))
    return made[model]


def is_placeholder(value) -> bool:
    """Serializer output of a stand-in: a nested object without id or url."""
    return isinstance(value, dict) and "id" in value and value["id"] is None and value.get("url", "") is None


def _node_hidden(node, hidden):
    ct_id, pk = (int(part) for part in str(node).split(":"))
    return pk in hidden.get(ContentType.objects.get_for_id(ct_id).model_class(), ())


def derived_columns(model, vis: Visibility, counters=True) -> set:
    """Columns of ``model`` that NetBox derives from other objects this user may not view all of:
    tree fields (from other objects of the type) and stored counters (from the counted type; the tools
    return those recounted, see handlers._visible_counts, but cannot filter, order or group by them)."""
    counted, tree = _derived_fields(model)
    out = {name for name, counted_model in counted if vis.constrained(counted_model)} if counters else set()
    if tree and vis.constrained(model):
        out.update(tree)
    return out


@lru_cache(maxsize=1024)
def _derived_fields(model):
    """The model's stored counters as (name, counted model), and its tree columns."""
    fields = model._meta.concrete_fields
    counted = tuple((f.name, apps.get_model(f.to_model_name)) for f in fields if isinstance(f, CounterCacheField))
    tree = tuple(f.name for f in fields if f.name in TREE_COLUMNS and not isinstance(f, CounterCacheField))
    return counted, tree


def generic_columns(model) -> dict:
    """{column name: generic relation name} for the type and id columns of generic foreign keys."""
    out = {}
    for field in _relations(model):
        if isinstance(field, GenericForeignKey):
            out[field.ct_field] = out[model_attname(model, field.ct_field)] = field.name
            out[field.fk_field] = field.name
    return out


def withheld_fields(info, names, vis: Visibility) -> set:
    """Serializer fields among ``names`` computed from objects the user may not view all of."""
    if vis.user.is_superuser:
        return set()
    from extras.models import ConfigContext

    derived = derived_columns(info.model, vis, counters=False)
    # NetBox renders config_context by merging every context assigned, whatever the permissions.
    out = {"config_context"} & set(names) if vis.constrained(ConfigContext) else set()
    if not derived:
        return out
    declared = info.serializer._declared_fields
    for name in names:
        source = getattr(declared.get(name), "source", None) or name
        prop = getattr(info.model, source, None)  # a property reading one (Prefix.children is _children)
        reads = (
            set(prop.fget.__code__.co_names) if isinstance(prop, property) and hasattr(prop.fget, "__code__") else set()
        )
        if name in derived or source in derived or reads & derived:
            out.add(name)
    return out


def unusable_field(info, path, vis: Visibility, use: str):
    """Refuse ordering or grouping by a value withheld from this user (see :func:`withheld_fields`):
    derived columns, the parts of a generic relation, and JSON documents (which cannot be grouped)."""
    first = path.split("__", 1)[0]
    try:
        field = info.model._meta.get_field(first)
    except FieldDoesNotExist:
        return
    if isinstance(field, models.JSONField):
        raise ToolError(
            f"cannot {use} '{path[:100]}': it is a JSON document; {use} by one of its fields is not supported"
        )
    if first in derived_columns(info.model, vis):
        raise ToolError(
            f"cannot {use} '{path[:100]}': {info.label} computes it from objects your permissions do not let you view"
        )
    if first in generic_columns(info.model) and vis.any_constrained():
        raise ToolError(
            f"cannot {use} '{path[:100]}': it is part of a generic relation "
            f"('{generic_columns(info.model)[first]}'), which may point to objects your permissions "
            "do not let you view"
        )
