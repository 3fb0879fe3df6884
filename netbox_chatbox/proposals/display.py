"""A proposal's diff as a person reads it: related objects by name with links, only those the user may view.

NetBox's change-log snapshots name related objects by id ("site": 3). The card and the model see
{"id", "display", "url"} instead, built as the tools build links (tools/computed/common.link, masked for a
constrained user); an object the user may not view reads as ``HIDDEN`` with no id, as the tools treat it.
"""

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist

from ..tools.computed.common import link
from ..tools.types import get_object_type, object_type_for_model
from ..tools.visibility import Visibility

HIDDEN = {"display": "an object you may not view", "hidden": True}  # as tools/computed/ says it


class Namer:
    """Names related objects for one user, one query per model and id set (a proposal's whole diff)."""

    def __init__(self, user):
        self.vis = Visibility(user) if user is not None else None

    def object(self, object_type: str, pk) -> dict | None:
        """The proposal's own object as a link, when it exists and the user may view it."""
        if pk is None or self.vis is None:
            return None
        model = get_object_type(object_type).model
        obj = model.objects.filter(pk=pk).first()
        return self._link(obj) if obj is not None else None

    def value(self, model, key: str, value):
        """A changed field's value, a related object (or a list of them) named; anything else as is."""
        if value in (None, "", []) or self.vis is None:
            return value
        try:
            field = model._meta.get_field(key)
        except FieldDoesNotExist:
            return value
        if not field.is_relation or field.related_model is None:
            return value
        related = field.related_model
        if field.many_to_one or field.one_to_one:
            if not isinstance(value, int):
                return value
            return self._named(related, [value])[0]
        if field.many_to_many and isinstance(value, list) and all(isinstance(v, int) for v in value):
            return self._named(related, value)
        return value

    def _named(self, model, pks) -> list:
        if model is ContentType:
            types = ContentType.objects.in_bulk(pks)
            return [{"display": f"{types[pk].app_label}.{types[pk].model}"} if pk in types else pk for pk in pks]
        if object_type_for_model(model) is None:  # a type the assistant never shows (users, tokens…)
            return [dict(HIDDEN) for _ in pks]
        found = model.objects.in_bulk(pks)
        hidden = self.vis.hidden(model, pks)
        return [self._link(found[pk]) if pk in found and pk not in hidden else dict(HIDDEN) for pk in pks]

    def _link(self, obj) -> dict | None:
        if self.vis.hidden(type(obj), [obj.pk]):
            return None
        try:
            return link(obj, self.vis)
        except Exception:  # a model without a page of its own: the name alone
            return {"id": obj.pk, "display": str(obj)}
