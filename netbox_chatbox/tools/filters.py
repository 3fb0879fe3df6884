"""Filtering with each type's own NetBox FilterSet, kept inside what the user may view.

Model-choice filters choose only among visible objects; every other filter is built alone and its
query checked (``reads.check_reads``) before it is used; ``q`` that would read more falls back to a
search of the object's own text fields.
"""

import difflib

import django_filters
from django import forms
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db.models import CharField, Q, TextField
from django.http import QueryDict

from .reads import check_reads
from .types import ToolError, is_secret_name, object_type_for_model
from .visibility import Visibility, derived_columns

MODEL_CHOICE_FILTERS = (django_filters.ModelChoiceFilter, django_filters.ModelMultipleChoiceFilter)


LOOKUP_SUFFIXES = (
    "__n (not), __ic (contains), __nic, __isw (starts with), __iew, __ie (iexact), "
    "__gt/__gte/__lt/__lte (numbers, dates), __empty (true/false)"
)


MAX_FILTER_VALUES = 50


MAX_FILTERS = 20


HINTS = (
    ((forms.IntegerField, forms.DecimalField, forms.FloatField), "number"),
    ((forms.DateField, forms.DateTimeField), "date"),
    ((forms.BooleanField, forms.NullBooleanField), "boolean"),
)


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


def filter_hint(filt):
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
