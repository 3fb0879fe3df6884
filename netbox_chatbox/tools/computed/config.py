"""A device's merged config context and rendered configuration."""

from dcim.models import Device
from extras.models import ConfigContext

from ..types import ToolError, object_type_for_model, scrub
from ..visibility import Visibility
from .common import find_device, link, may_view


def device_config(user, device=None, device_id=None, render=False):
    """A device's merged config context and, with render, its rendered config template.

    Rendering needs NetBox's render_config permission on the device, as in NetBox's API; the template
    sees the config context without secret-like keys, like everything else the model reads."""
    parent = find_device(user, device, device_id)
    context = scrub(parent.get_config_context())
    vis = Visibility(user)
    if vis.constrained(ConfigContext) or object_type_for_model(ConfigContext) is None:
        # NetBox merges every context assigned, whatever the permissions: withheld as in get_object, and
        # when the admin excludes config contexts from the tools (excluded_models).
        result = {
            "object": link(parent, vis),
            "config_context": None,
            "note": "the merged config context is withheld: it may include contexts you may not view",
        }
    else:
        result = {"object": link(parent, vis), "config_context": context}
    if not render:
        return result
    if not Device.objects.restrict(user, "render_config").filter(pk=parent.pk).exists():
        raise ToolError("you may not render configurations of this device (NetBox's render_config permission)")
    template = parent.get_config_template()
    if template is None:
        result["rendered"] = None
        result["note"] = "no config template is assigned to this device, its role or its platform"
        return result
    if not may_view(template, vis):
        raise ToolError("the device's config template is not visible to you")
    try:
        text = template.render(context={**context, "device": parent})
    except Exception as e:
        raise ToolError(f"the config template failed to render: {template.format_render_error(e)}") from None
    result.update(template=link(template), rendered=text)
    return result
