"""The NetBox page a question is asked from, as the user may see it.

The browser sends only the page's address (path and query). What the model is told comes from
resolving that address here, as the user: the object through ``.restrict(user, "view")``, a list's
type only with the view permission and its filters only as the list's own filterset names them. A
hidden object, a page that is no object or list, and a type the assistant may not read give no context.
"""

from urllib.parse import parse_qsl, urlsplit

from django.urls import Resolver404, resolve
from netbox.views.generic import ObjectListView, ObjectView

MAX_PATH = 2000
MAX_FILTERS = 10
MAX_VALUE = 100
IGNORED_PARAMS = {"page", "per_page", "sort", "export", "embed", "tab", "return_url"}


def _view_class(path):
    try:
        match = resolve(path)
    except (Resolver404, ValueError):
        return None, {}
    return getattr(match.func, "view_class", None), match.kwargs


def readable(model) -> bool:
    """Whether the assistant may read this type at all (tools/types.py: not excluded, not a secret store)."""
    from .tools.types import object_types

    return model is not None and model._meta.label_lower in object_types()


def _model(view_class, kwargs):
    """The page's model: its view's queryset, or the ``model`` NetBox's URL passes to tabs (changelog, journal)."""
    model = getattr(getattr(view_class, "queryset", None), "model", None) or kwargs.get("model")
    return model if isinstance(model, type) and readable(model) else None


def _filters(view_class, query):
    """The query's parameters the list's filterset knows (bounded); everything else is dropped."""
    filterset = getattr(view_class, "filterset", None)
    known = set(getattr(filterset, "base_filters", {}))
    filters = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        if key in IGNORED_PARAMS or key not in known or not value:
            continue
        values = filters.setdefault(key, [])
        if value[:MAX_VALUE] not in values and len(values) < MAX_FILTERS:
            values.append(value[:MAX_VALUE])
        if len(filters) >= MAX_FILTERS:
            break
    return filters


def describe_object(obj) -> dict:
    """An object the user may view, as the chip shows it and the model is told."""
    meta = obj._meta
    return {
        "kind": "object",
        "type": meta.label_lower,
        "type_name": str(meta.verbose_name),
        "id": obj.pk,
        "display": str(obj),
        "url": obj.get_absolute_url(),
    }


def resolve_page(user, address) -> dict | None:
    """``/dcim/devices/5/`` or ``/dcim/devices/?site_id=3`` → a description of the page, or None."""
    if not isinstance(address, str) or not address or len(address) > MAX_PATH:
        return None
    parts = urlsplit(address)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None  # only this NetBox's own pages
    view_class, kwargs = _view_class(parts.path)
    if view_class is None:
        return None
    model = _model(view_class, kwargs)
    if model is None:
        return None
    meta = model._meta
    if "pk" in kwargs and (issubclass(view_class, ObjectView) or "model" in kwargs):
        obj = model.objects.restrict(user, "view").filter(pk=kwargs["pk"]).first()
        return describe_object(obj) if obj is not None else None
    if issubclass(view_class, ObjectListView) and not kwargs:
        if not user.has_perm(f"{meta.app_label}.view_{meta.model_name}"):
            return None
        filters = _filters(view_class, parts.query)
        query = "&".join(f"{key}={value}" for key, values in filters.items() for value in values)
        return {
            "kind": "list",
            "type": meta.label_lower,
            "type_name": str(meta.verbose_name_plural),
            "filters": filters,
            "url": parts.path + (f"?{query}" if query else ""),
        }
    return None


def describe(page: dict) -> str:
    """One line for the model: what the user is looking at while asking."""
    if page["kind"] == "object":
        return (
            f'[Context: the user is viewing the {page["type_name"]} "{page["display"]}" '
            f"({page['type']}, id {page['id']}, {page['url']}).]"
        )
    filters = ", ".join(f"{key}={'|'.join(values)}" for key, values in page["filters"].items())
    return (
        f"[Context: the user is viewing the list of {page['type_name']} ({page['type']})"
        f"{f' filtered by {filters}' if filters else ''}, {page['url']}.]"
    )


CONTEXT_PREFIX = "\n\n[Context: "


def question_of(text: str) -> str:
    """The user's own words of a stored question (without the page context line)."""
    return text.split(CONTEXT_PREFIX, 1)[0]


def with_context(user, text: str, address) -> str:
    """The question as the model gets it: the text, plus the page it was asked from when the user may see it."""
    page = resolve_page(user, address) if address else None
    return f"{text}\n\n{describe(page)}" if page else text  # describe() starts with "[Context: "
