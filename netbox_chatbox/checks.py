"""System checks: a bad PLUGINS_CONFIG shows up in ``netbox check`` instead of crashing NetBox."""

from django.core.checks import Error, Warning, register

from . import catalog, endpoints
from .conf import get_settings


@register()
def check_settings(app_configs=None, **kwargs):
    settings = get_settings()
    problems = [
        Error(f"PLUGINS_CONFIG['netbox_chatbox']: {message}", id="netbox_chatbox.E001") for message in settings.errors
    ]
    problems += [
        Error(f"PLUGINS_CONFIG['netbox_chatbox']: {message}", id="netbox_chatbox.E002")
        for message in catalog.catalog_errors()
    ]
    problems += [
        Error(
            f"PLUGINS_CONFIG['netbox_chatbox']: {message}",
            id="netbox_chatbox.E004",
            hint="Users see this model as unavailable until it is fixed; see docs/local-models.md.",
        )
        for message in _endpoint_problems(settings)
    ]
    try:
        catalog.get_model(settings.default_model)
    except catalog.ModelNotAvailable as exc:
        problems.append(
            Error(
                f"PLUGINS_CONFIG['netbox_chatbox']['default_model']: {exc}",
                hint=f"Users get '{catalog.default_model_id()}' instead.",
                id="netbox_chatbox.E003",
            )
        )
    if settings.allow_anthropic_via_litellm:
        problems.append(
            Warning(
                "allow_anthropic_via_litellm is on: Anthropic models with a litellm_model go through LiteLLM "
                "and lose the Claude Agent SDK's features (automatic model choice, prompt caching).",
                id="netbox_chatbox.W001",
            )
        )
    if not settings.anthropic_api_key:
        problems.append(
            Warning(
                "No Anthropic API key: Claude models cannot answer.",
                hint="Set 'anthropic_api_key' in PLUGINS_CONFIG or the ANTHROPIC_API_KEY environment variable.",
                id="netbox_chatbox.W002",
            )
        )
    return problems


def _endpoint_problems(settings) -> list[str]:
    """Path B entries users could pick that cannot be called as configured."""
    if not settings.litellm_enabled:
        return []
    found = []
    for entry in catalog.get_catalog().values():
        if entry.enabled and entry.path == catalog.PATH_LITELLM:
            found += endpoints.problems(entry, ask_litellm=True)
    return found
