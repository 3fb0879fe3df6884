"""What a filter reads: refused when it would read through objects the user may not view all of, or
values the tools withhold (see ``filters.apply_filters``, which builds each filter alone).

The filter's query is walked structurally, not its SQL text: every table of the query and of each
query nested in it (``__in`` querysets, ``Subquery``, ``Exists``, annotations), and every column its
conditions compare, known by its model field whatever alias (``U0``, ``U1``…) the SQL gives its table.
"""

from dataclasses import dataclass, field
from functools import lru_cache

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.expressions import BaseExpression, Col, RawSQL, ResolvedOuterRef
from django.db.models.fields.json import KeyTransform
from django.db.models.lookups import Lookup
from django.db.models.sql import Query
from django.db.models.sql.datastructures import BaseTable
from django.db.models.sql.where import ExtraWhere, WhereNode

from .types import ToolError, is_secret_name, object_type_for_model
from .visibility import Visibility, derived_columns, generic_columns, generic_relations


@lru_cache(maxsize=1)
def _tables() -> dict:
    return {model._meta.db_table: model for model in apps.get_models()}


@dataclass
class Column:
    """One read of a column: ``partly`` when only a JSON key of it or its nullness is read, ``values`` when
    it is compared only with values (``=``/``IN``, not ``IS NULL``), ``selected`` when a nested query returns it."""

    field: models.Field
    partly: bool = False
    values: bool = False
    selected: bool = False


@dataclass
class Reads:
    """What a query and the queries nested in it read."""

    tables: list = field(default_factory=list)  # the model of each table, once per query that reads it
    sources: set = field(default_factory=set)  # models some query selects FROM (its base table)
    columns: list = field(default_factory=list)
    raw: bool = False  # raw SQL (``extra``, ``RawSQL``) that cannot be inspected

    def query(self, query, nested=False):
        for alias, table in query.alias_map.items():
            # The tables the SQL names: a nested query's unreferenced aliases are left out of it (an exclusion's
            # subquery starts from the outer type, then trims it).
            if query.alias_refcount.get(alias) or isinstance(table, BaseTable) and not nested:
                model = _tables().get(table.table_name)
                self.tables.append(model)
                if isinstance(table, BaseTable):
                    self.sources.add(model)
        self.expression(query.where)
        for annotation in query.annotations.values():
            self.expression(annotation)
        if nested:  # what a nested query returns is compared with the outer query's values
            for selected in query.select:
                self.expression(selected, selected=True)
        for combined in query.combined_queries:
            self.query(combined, nested=True)

    def expression(self, node, partly=False, values=False, selected=False):
        if isinstance(node, models.QuerySet):
            node = node.query
        if isinstance(node, Query):
            self.query(node, nested=True)
        elif isinstance(node, Col):
            self.columns.append(Column(node.target, partly, values, selected))
        elif isinstance(node, (ExtraWhere, RawSQL)):
            self.raw = True
        elif isinstance(node, WhereNode):
            joins = _generic_joins(node) if node.connector == "AND" and not node.negated else set()
            for child in node.children:
                if id(child) not in joins:
                    self.expression(child)
        elif isinstance(node, Lookup) and _joins(node):
            pass  # a join written as a condition (a correlated subquery's): no value is read
        elif isinstance(node, Lookup):
            partly = node.lookup_name == "isnull" or isinstance(node.lhs, KeyTransform)
            self.expression(node.lhs, partly=partly, values=not partly)
            for value in node.rhs if isinstance(node.rhs, (list, tuple, set)) else [node.rhs]:
                self.expression(value)
        elif isinstance(node, KeyTransform):
            self.expression(node.lhs, partly=True, values=values, selected=selected)
        elif hasattr(node, "query") and isinstance(node.query, Query):  # Subquery, Exists
            self.query(node.query, nested=True)
        elif isinstance(node, BaseExpression) and not isinstance(node, ResolvedOuterRef):
            for source in node.get_source_expressions():
                self.expression(source, partly, values, selected)


def _joins(lookup) -> bool:
    """``U1.device_id = dcim_device.id``: a foreign key equal to the key it points to, in another query's table
    (as Django correlates an ``Exists``/``__in`` subquery, e.g. of an exclusion, with the outer row). Both tables
    are counted as read; the comparison itself reads no value."""
    if lookup.lookup_name != "exact":
        return False
    for key, other in ((lookup.lhs, lookup.rhs), (lookup.rhs, lookup.lhs)):
        pointed = getattr(key.target, "target_field", None) if isinstance(key, Col) else None
        if pointed is None:
            continue
        if isinstance(other, ResolvedOuterRef) and other.name in ("pk", pointed.name):
            return True
        if isinstance(other, Col) and other.target == pointed:
            return True
    return False


def _generic_joins(node) -> set:
    """The conditions of ``node`` (ids) that join a generic relation's target in another query's table:
    ``U1.assigned_object_id = dcim_interface.id AND U1.assigned_object_type_id = <interface's type>``, as Django
    correlates a subquery through a GenericRelation. Together they read no value."""
    out = set()
    lookups = [child for child in node.children if isinstance(child, Lookup) and child.lookup_name == "exact"]
    for pk in lookups:
        key, other = pk.lhs, pk.rhs
        if not (isinstance(key, Col) and isinstance(other, Col) and other.target.primary_key):
            continue
        for relation in generic_relations(key.target.model):
            if key.target.name != relation.fk_field:
                continue
            for kind in lookups:
                if (
                    isinstance(kind.lhs, Col)
                    and kind.lhs.alias == key.alias
                    and kind.lhs.target.name == relation.ct_field
                    and _type_model(kind.rhs) is other.target.model._meta.concrete_model
                ):
                    out |= {id(pk), id(kind)}
    return out


def _type_model(type_id):
    """The model of an object type id (ContentType's cache; get_for_model() would INSERT a missing row,
    which fails in the tools' read-only transaction)."""
    try:
        return ContentType.objects.get_for_id(int(type_id)).model_class()
    except (TypeError, ValueError, ContentType.DoesNotExist):
        return None


def check_reads(info, name, queryset, vis: Visibility, choice_model=None):
    """Refuse filter ``name`` if what it adds to ``queryset`` (built for it alone) reads objects the
    user may not view all of, or values the tools withhold. ``choice_model`` is the model a model-choice
    filter picks its values from (already restricted to visible objects): comparing with those is safe."""
    reads = Reads()
    reads.query(queryset.query)
    if reads.raw and vis.any_constrained():
        _refuse(info, name, "it uses SQL the assistant cannot check against your permissions")
    reached = {model for model in reads.tables if model is not None and model is not info.model}
    if reads.tables.count(info.model) > 1:
        reached.add(info.model)  # a self-join or subquery: the filter compares with other objects of the type
    if choice_model in reads.sources:
        choice_model = None  # values chosen by a query (e.g. a tree's descendants), not the visible ones
    for column in reads.columns:
        reached |= _column_reads(info, name, column, vis, choice_model)
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


def _column_reads(info, name, column, vis, choice_model) -> set:
    """What one compared column reads (of this type, a related one or a link table)."""
    field, model = column.field, column.field.model._meta.concrete_model
    if isinstance(field, models.JSONField) and not column.partly:
        _refuse(info, name, "it searches whole JSON documents, which may hold values the assistant withholds")
    if is_secret_name(field.name):
        _refuse(info, name, "it reads values the assistant withholds")
    if field.name in derived_columns(model, vis):
        _refuse(
            info,
            name,
            f"it compares '{field.name}', which NetBox computes from objects your permissions do not let you view",
        )
    generic = generic_columns(model)
    if field.column in generic and vis.any_constrained():
        _refuse(
            info,
            name,
            f"it reads the generic relation '{generic[field.column]}', which may point to objects "
            "your permissions do not let you view",
        )
    if field.is_relation and field.related_model is not None:
        target = field.related_model._meta.concrete_model
        if column.selected and target is info.model:
            return set()  # a nested query's ids of this type, matched against the objects themselves
        if vis.constrained(target) and not (target is choice_model and column.values):
            return {target}
    return set()


def _refuse(info, name, why):
    raise ToolError(f"filter '{name[:60]}' cannot be used on {info.label}: {why}")
