"""Which NetBox object types the assistant may read, and which of their fields.

Discovered from NetBox itself: every installed model (core or plugin) that has a FilterSet
(to validate filters), a REST serializer (to render it) and a restrictable queryset (to apply
ObjectPermissions). Secrets are decided here, once, for every tool: a field or JSON key named
like a password/secret/token/key never leaves, nor do the admin's ``excluded_models`` /
``excluded_fields``. An excluded type is simply absent, so it reads like a type that does not exist.
"""

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.contrib.contenttypes.prefetch import GenericPrefetch
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Prefetch
from django.utils.module_loading import import_string
from netbox.api.exceptions import SerializerNotFound
from netbox.registry import registry
from utilities.api import get_prefetches_for_serializer, get_serializer_for_model

from ..conf import get_settings

# Name segments that mark a secret ("preshared_key", "auth_psk", "password", "api_tokens").
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "key",
        "keys",
        "psk",
        "credential",
        "credentials",
        "community",  # SNMP community strings, often kept in config contexts
    }
)
# ... and words ending like one ("apikey", "authtoken", "rootpassword").
SECRET_ENDINGS = ("password", "passwd", "secret", "token", "apikey")
# Fields that hold secrets without saying so (webhook headers carry "Authorization: …").
SECRET_FIELDS = frozenset({"additional_headers"})
# Never exposed, whatever the permissions: credentials, internal caches, change records (read only
# through get_changelog, which also checks the changed object's visibility), and cable termination
# records (read through dcim.cable; naming each one costs queries per row, through any object type).
NEVER_EXPOSED = frozenset(
    {
        "users.token",
        "account.usertoken",
        "users.userconfig",
        "core.objectchange",
        "extras.cachedvalue",
        "dcim.cabletermination",
    }
)
# Apps whose models are never exposed (the chat logs themselves are not NetBox data).
NEVER_EXPOSED_APPS = frozenset({"netbox_chatbox", "sessions", "social_django", "auth", "contenttypes"})
# Relations str() reads that NetBox's viewsets do not declare (Device.label falls back to its virtual chassis).
DISPLAY_PREFETCHES = {"dcim.device": ("virtual_chassis",)}
# Serializer fields rendering a cabled object's link peers, and the generic relation they are read through.
LINK_PEER_FIELDS = frozenset({"link_peers", "link_peers_type"})
LINK_PEERS = "cable__terminations__termination"


class ToolError(Exception):
    """Bad input: the message goes back to the model so it can correct the call."""


def is_secret_name(name: str) -> bool:
    """True for names like ``password``, ``auth_psk``, ``preshared_key`` or an admin-excluded field."""
    return _is_secret(str(name).lower(), excluded_fields())


@lru_cache(maxsize=8192)
def _is_secret(name: str, excluded: frozenset) -> bool:
    if name in SECRET_FIELDS or name in excluded:
        return True
    return any(part in SECRET_WORDS or part.endswith(SECRET_ENDINGS) for part in re.split(r"[^a-z0-9]+", name))


def excluded_fields() -> frozenset:
    return _lowered(tuple(get_settings().excluded_fields))


@lru_cache(maxsize=8)
def _lowered(names: tuple) -> frozenset:
    return frozenset(n.lower() for n in names)


def scrub(value):
    """Drop secret-named keys at any depth (JSON config, custom fields, changelog snapshots)."""
    excluded = excluded_fields()

    def clean(item):
        if isinstance(item, dict):
            return {k: clean(v) for k, v in item.items() if not _is_secret(str(k).lower(), excluded)}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        return item

    return clean(value)


@dataclass(frozen=True)
class ObjectTypeInfo:
    """One readable object type: its model, FilterSet and serializer, and its visible fields."""

    label: str
    model: type
    filterset: type
    serializer: type

    @cached_property
    def viewset(self):
        """NetBox's REST viewset for the type, whose queryset and declared prefetches fit its serializer."""
        try:
            viewset = import_string(f"{self.model._meta.app_config.name}.api.views.{self.model.__name__}ViewSet")
        except ImportError:
            return None
        return viewset if getattr(getattr(viewset, "queryset", None), "model", None) is self.model else None

    def queryset(self):
        """The viewset's queryset (with NetBox's own prefetches) or the default manager's."""
        return self.viewset.queryset.all() if self.viewset else self.model.objects.all()

    def declared_prefetches(self, fields) -> list:
        """Prefetches the viewset declares for fields it cannot derive (e.g. Device.display reads device_type)."""
        declared = getattr(self.viewset, "field_prefetches", None) or {}
        lookups = [lookup for names, lookups in declared.items() if set(names) & set(fields) for lookup in lookups]
        if LINK_PEER_FIELDS & set(fields) and hasattr(self.model, "link_peers"):
            # In place of NetBox's, which loads the device and cable of interface peers only (of any
            # other peer, one query each) and is declared for interfaces only.
            lookups = [lookup for lookup in lookups if _lookup_path(lookup) != LINK_PEERS] + [link_peers_prefetch()]
        return lookups

    def filterset_for(self, names: frozenset):
        """The type's FilterSet narrowed to the filters ``names`` (see :func:`_narrowed`)."""
        return _narrowed(self.filterset, names)

    def display_prefetches(self) -> list:
        """What rendering ``str(obj)`` reads, so a list of these objects costs no query per object."""
        return self.declared_prefetches(["display"]) + list(DISPLAY_PREFETCHES.get(self.label, ()))

    @property
    def verbose_name(self) -> str:
        return str(self.model._meta.verbose_name)

    def is_hidden(self, name: str) -> bool:
        """A secret-like or excluded field, or a relation to a type that is not exposed."""
        if is_secret_name(name):
            return True
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        related = field.related_model if field.is_relation else None
        return related is not None and not issubclass(related, ContentType) and object_type_for_model(related) is None

    @cached_property
    def fields(self) -> tuple:
        """Serializer fields that may be returned (hidden ones removed)."""
        names = self.serializer.Meta.fields
        if isinstance(names, str):  # "__all__" in some plugin serializers
            names = list(self.serializer(context={"request": None}).fields)
        return tuple(f for f in names if f not in ("url", "display_url") and not self.is_hidden(f))

    @cached_property
    def brief_fields(self) -> tuple:
        brief = getattr(self.serializer.Meta, "brief_fields", None) or ("id", "display")
        return tuple(f for f in brief if f in self.fields)

    def model_field(self, path: str):
        """Resolve a model field path like ``site`` or ``device_type__manufacturer`` (hidden parts refused)."""
        info, field = self, None
        for part in path.split("__"):
            if field is not None:
                if not field.is_relation:
                    raise ToolError(f"'{path[:100]}': '{field.name}' has no sub-fields")
                info = object_type_for_model(field.related_model)
                if info is None:
                    raise ToolError(f"'{path[:100]}': '{field.name}' has no sub-fields")
            try:
                field = info.model._meta.get_field(part)
            except FieldDoesNotExist:
                raise ToolError(f"'{path[:100]}' is not a field of {self.label}") from None
            if info.is_hidden(part):
                raise ToolError(f"'{path[:100]}' is not a field of {self.label}")
            if not field.concrete or field.many_to_many:
                raise ToolError(f"'{path[:100]}' is not a single-valued field of {self.label}")
        return field


def _lookup_path(lookup) -> str:
    return lookup.prefetch_to if isinstance(lookup, Prefetch) else lookup


def link_peers_prefetch():
    """The link peers of cabled objects, each type with what its nested rendering and display read, in
    a query per peer type (relations through foreign keys joined, others prefetched)."""
    return GenericPrefetch(LINK_PEERS, [_peer_queryset(model) for model in _cabled_models()])


def _cabled_models():
    from dcim.models.device_components import CabledObjectModel

    return [model for model in apps.get_models() if issubclass(model, CabledObjectModel)]


def _peer_queryset(model):
    serializer = get_serializer_for_model(model)
    paths = get_prefetches_for_serializer(serializer, fields=serializer.Meta.brief_fields)
    if (info := object_type_for_model(model)) is not None:
        paths += info.display_prefetches()
    for path in list(paths):
        related = path_end(model, path) if isinstance(path, str) else None
        if related is not None and (related_info := object_type_for_model(related)) is not None:
            paths += [f"{path}__{lookup}" for lookup in related_info.display_prefetches() if isinstance(lookup, str)]
    joined = [path for path in paths if isinstance(path, str) and path_end(model, path, joinable=True)]
    queryset = model.objects.select_related(*dict.fromkeys(joined))
    return queryset.prefetch_related(*dict.fromkeys(path for path in paths if path not in joined))


def path_end(model, path, joinable=False):
    """The model at the end of a relation path (None if it is not one; with ``joinable``, not one of
    forward foreign keys only)."""
    for part in path.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        if not field.is_relation or field.related_model is None:
            return None
        if joinable and not (field.concrete and (field.many_to_one or field.one_to_one)):
            return None
        model = field.related_model
    return model


@lru_cache(maxsize=512)
def _narrowed(filterset, names: frozenset):
    """A subclass of a NetBox FilterSet holding only the named filters (custom field filters are still
    added per instance). NetBox rebuilds and django-filters deep-copies all of a FilterSet's several
    hundred filters on every instantiation, which costs tens of milliseconds per filtered query."""
    chosen = {name: filt for name, filt in filterset.get_filters().items() if name in names}
    return type(
        filterset.__name__,
        (filterset,),
        {
            "__module__": filterset.__module__,
            "get_filters": classmethod(lambda cls: chosen),
        },
    )


def _filterset_for(model):
    label = model._meta.label_lower
    if label in registry["filtersets"]:
        return registry["filtersets"][label]
    try:  # NetBox's own convention (netbox/views/htmx.py); importing it also fills the registry
        return import_string(f"{model._meta.app_config.name}.filtersets.{model.__name__}FilterSet")
    except ImportError:
        return None


@lru_cache(maxsize=8)
def _catalog(excluded: tuple, hidden_fields: frozenset) -> dict:
    """Built once per settings (``hidden_fields`` keys the cache: ObjectTypeInfo.fields depend on it)."""
    catalog = {}
    for model in apps.get_models():
        label = model._meta.label_lower
        if (
            label in excluded
            or label in NEVER_EXPOSED
            or model._meta.app_label in NEVER_EXPOSED_APPS
            or model._meta.proxy
            or not hasattr(model._default_manager.all(), "restrict")
        ):
            continue
        filterset = _filterset_for(model)
        try:
            serializer = get_serializer_for_model(model)
        except SerializerNotFound:
            continue
        if filterset is not None:
            catalog[label] = ObjectTypeInfo(label, model, filterset, serializer)
    return dict(sorted(catalog.items()))


def object_types() -> dict:
    """{label: ObjectTypeInfo} for every readable type (before per-user permissions)."""
    return _catalog(tuple(sorted(m.lower() for m in get_settings().excluded_models)), excluded_fields())


def object_type_for_model(model):
    return object_types().get(model._meta.concrete_model._meta.label_lower)


def existing_type_ids(models) -> dict:
    """{model: its object type's id} for those of ``models`` whose row exists, in one query. NetBox's
    get_for_models() would INSERT a missing row, which fails in the tools' read-only transaction; a type
    without a row has no change records or search entries anyway."""
    wanted = {(m._meta.app_label, m._meta.model_name): m for m in models}
    rows = ContentType.objects.filter(app_label__in={app for app, _ in wanted}).values_list("app_label", "model", "pk")
    return {wanted[(app, name)]: pk for app, name, pk in rows if (app, name) in wanted}


def get_object_type(label) -> ObjectTypeInfo:
    """The type for a label like ``dcim.device``; unknown and excluded types give the same error."""
    info = object_types().get(str(label).strip().lower()) if isinstance(label, str) else None
    if info is None:
        shown = repr(label[:60] + "…" if len(label) > 60 else label) if isinstance(label, str) else "given"
        raise ToolError(
            f"unknown object type {shown}: use 'app_label.model' such as dcim.device, ipam.prefix "
            "(list_object_types lists them all)"
        )
    return info
