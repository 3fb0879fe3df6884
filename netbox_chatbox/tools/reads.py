"""What a filter reads: refused when it would read through objects the user may not view all of, or
values the tools withhold (see ``filters.apply_filters``, which builds each filter alone)."""

import re
from functools import lru_cache

from django.apps import apps
from django.core.exceptions import EmptyResultSet
from django.db import models

from .types import ToolError, is_secret_name, object_type_for_model
from .visibility import Visibility, derived_columns, generic_columns, generic_relations

_TABLE = re.compile(r'(?:FROM|JOIN)\s+"(\w+)"')


# A column in a condition; group 2 is set when only a key of it is read (JSON ``->``) or its nullness.
_OWN_COLUMN = '"{table}"\\."(\\w+)"(\\s*->|\\s+IS\\s)?'


@lru_cache(maxsize=1)
def _tables() -> dict:
    return {model._meta.db_table: model for model in apps.get_models()}


def check_reads(info, name, queryset, vis: Visibility, choice_model=None):
    """Refuse filter ``name`` if the SQL it adds to ``queryset`` (built for it alone) reads objects the
    user may not view all of, or values the tools withhold. ``choice_model`` is the model a model-choice
    filter picks its values from (already restricted to visible objects): comparing with those is safe."""
    try:
        sql = str(queryset.query)
    except EmptyResultSet:
        return
    table = info.model._meta.db_table
    tables = _TABLE.findall(sql)
    reached = {_tables().get(t) for t in tables if t != table} - {None}
    if tables.count(table) > 1:
        reached.add(info.model)  # a self-join or subquery: the filter compares with other objects of the type
    if choice_model is not None and re.search(f'FROM\\s+"{choice_model._meta.db_table}"', sql):
        choice_model = None  # values chosen by a subquery (e.g. a tree's descendants), not the visible ones
    conditions = sql.split(" WHERE ", 1)[1] if " WHERE " in sql else ""  # not the selected columns
    for alias in dict.fromkeys(tables):
        if (model := _tables().get(alias)) is not None:
            reached |= _column_reads(info, name, model, conditions, vis, choice_model)
    for model in reached:
        if (
            object_type_for_model(model) is None
            and vis.any_constrained()
            and (generic_relations(model) or model._meta.label_lower == "dcim.cablepath")
        ):
            # Link records and cable paths the tools never show: their other ends may be hidden objects.
            _refuse(
                info,
                name,
                f"it reads {model._meta.verbose_name_plural}, which may lead to objects your "
                "permissions do not let you view",
            )
        if model is not choice_model and vis.constrained(model):
            label = getattr(object_type_for_model(model), "label", model._meta.label_lower)
            _refuse(info, name, f"it reads {label} objects, and your permissions do not let you view all of them")


def _column_reads(info, name, model, sql, vis, choice_model) -> set:
    """What the filter's comparisons on ``model``'s columns read (this type's, or a link table's)."""
    reached = set()
    generic = generic_columns(model)
    derived = derived_columns(model, vis)
    table = model._meta.db_table
    for column, partly in re.findall(_OWN_COLUMN.format(table=table), sql):
        field = next((f for f in model._meta.concrete_fields if f.column == column), None)
        if field is None:
            continue
        if isinstance(field, models.JSONField) and not partly:
            _refuse(info, name, "it searches whole JSON documents, which may hold values the assistant withholds")
        if is_secret_name(field.name):
            _refuse(info, name, "it reads values the assistant withholds")
        if field.name in derived:
            _refuse(
                info,
                name,
                f"it compares '{field.name}', which NetBox computes from objects your permissions do not let you view",
            )
        if column in generic and vis.any_constrained():
            _refuse(
                info,
                name,
                f"it reads the generic relation '{generic[column]}', which may point to objects "
                "your permissions do not let you view",
            )
        if field.is_relation and field.related_model is not None:
            target = field.related_model._meta.concrete_model
            if vis.constrained(target) and not (target is choice_model and _compares_values(sql, table, column)):
                reached.add(target)
    return reached


def _compares_values(sql, table, column) -> bool:
    """The column is compared only with given values (``IN (…)``/``=``), not tested for NULL."""
    return not re.search(f'"{table}"\\."{column}" IS (NOT )?NULL', sql)


def _refuse(info, name, why):
    raise ToolError(f"filter '{name[:60]}' cannot be used on {info.label}: {why}")
