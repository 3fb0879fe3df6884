"""Ordering by visible data only: a value read through a hidden relation sorts as if it were empty."""

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Case, F, Q, Value, When
from django.db.models.expressions import OrderBy

from .visibility import Visibility, derived_columns, unusable_field, viewable


def ordered(info, queryset, ordering, user):
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
    if (shown := related_visible(model, path, user)) is None:
        return []  # all hidden: all sort alike (and SQL refuses to order by a constant)
    value = F(path) if not shown else Case(When(shown, then=F(path)), default=Value(None))
    return [value.desc(**nulls) if descending else value.asc(**nulls)]


def related_visible(model, path, user) -> Q | None:
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
