"""The plugin's settings: defaults, validation, and one accessor.

NetBox merges ``default_settings`` with ``PLUGINS_CONFIG['netbox_chatbox']``. We validate the
result once per process and report problems through Django system checks (``netbox check``)
instead of crashing NetBox; code that needs settings calls :func:`get_settings`.
"""

import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

DEFAULT_SETTINGS = {
    # Model selection
    "default_model": "auto",
    "enable_model_selection": True,
    "models": {},  # catalog overrides: {id: {field: value} | None to remove}
    "allow_anthropic_via_litellm": False,
    # Path A: Claude Agent SDK
    "anthropic_api_key": "",  # falls back to the ANTHROPIC_API_KEY environment variable
    "anthropic_base_url": "",  # optional corporate gateway; empty = Anthropic's API
    "fallback_model": "claude-haiku-4-5-20251001",
    "fallback_order": [
        "auto"
    ],  # catalog ids tried in order when the chosen model is down (e.g. ["auto", "ollama-qwen2.5"])
    "anthropic_timeout": 60,
    # Path B: LiteLLM
    "litellm_enabled": False,
    "litellm_proxy_url": "",  # e.g. http://127.0.0.1:4000; empty = call Ollama directly
    "litellm_master_key": "",  # falls back to the LITELLM_MASTER_KEY environment variable
    "ollama_base_url": "http://127.0.0.1:11434",
    "ollama_model": "qwen2.5:14b-instruct-8k",
    "litellm_timeout": 120,
    "litellm_max_retries": 1,
    "max_tool_rounds": 8,
    "max_output_tokens": 4096,  # longest answer per model call (both paths); longer ones are cut and marked
    # Health and telemetry
    "health_cache_ttl": 30,
    "health_check_timeout": 2.0,
    "log_model_usage": True,
    # Sessions and limits
    "session_idle_timeout": 900,
    "max_active_sessions": 10,
    "max_message_chars": 8000,
    "rate_limit_per_minute": 20,
    # Usage limits: {"default": {limits}, "groups": {"<NetBox group>": {limits}}, "exempt_local_models": True};
    # limits: day_tokens, month_tokens, day_cost_usd, month_cost_usd (None: no limit). See docs/usage.md.
    "budgets": {},
    # Tools
    "tool_max_results": 50,
    "tool_max_chars": 20000,
    "tool_statement_timeout_ms": 5000,
    "excluded_models": [],  # "app_label.model" the assistant may never read
    "excluded_fields": [],  # field names never returned, in addition to secret-like names
    "system_prompt": "",  # appended to the built-in system prompt
    # Changes through the chat (docs/changes.md): the model proposes, the user applies
    "enable_changes": False,
    "max_bulk_operations": 25,  # operations in one proposal
    "proposal_ttl": 3600,  # seconds a proposal can be applied
    # MCP endpoint (docs/mcp.md)
    "mcp_enabled": True,
    "mcp_max_concurrent_requests": 16,  # per server process; more get 503
    # Grounding: names and values an answer mentions that no tool result holds
    "grounding_mode": "flag",  # "flag" (mark them), "withhold" (replace the answer), "off"
}
GROUNDING_MODES = ("flag", "withhold", "off")

_INT_KEYS = {
    "anthropic_timeout": 1,
    "litellm_timeout": 1,
    "litellm_max_retries": 0,
    "max_tool_rounds": 1,
    "health_cache_ttl": 0,
    "session_idle_timeout": 10,
    "max_active_sessions": 1,
    "max_message_chars": 1,
    "rate_limit_per_minute": 0,
    "tool_max_results": 1,
    "tool_max_chars": 1000,
    "tool_statement_timeout_ms": 100,
    "mcp_max_concurrent_requests": 1,
    "max_bulk_operations": 1,
    "proposal_ttl": 60,
    "max_output_tokens": 1,
}
_BOOL_KEYS = (
    "enable_model_selection",
    "allow_anthropic_via_litellm",
    "litellm_enabled",
    "log_model_usage",
    "mcp_enabled",
    "enable_changes",
)
_STR_KEYS = (
    "default_model",
    "anthropic_api_key",
    "anthropic_base_url",
    "fallback_model",
    "litellm_proxy_url",
    "litellm_master_key",
    "ollama_base_url",
    "ollama_model",
    "system_prompt",
)
_URL_KEYS = ("anthropic_base_url", "litellm_proxy_url", "ollama_base_url")


class SettingsError(ValueError):
    """A PLUGINS_CONFIG value an admin must fix."""


@dataclass(frozen=True)
class Settings:
    values: dict
    errors: list = field(default_factory=list)

    def __getattr__(self, name):
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def _raw_config():
    from django.conf import settings

    return settings.PLUGINS_CONFIG.get("netbox_chatbox", {})


def validate(raw: dict) -> tuple[dict, list[str]]:
    """Return (clean settings, errors). Bad values fall back to defaults so NetBox keeps working."""
    values = {**DEFAULT_SETTINGS, **raw}
    errors = []
    for key in sorted(set(raw) - set(DEFAULT_SETTINGS)):
        errors.append(f"unknown key '{key}' (valid keys: see the README's configuration table)")
    for key in _BOOL_KEYS:
        if not isinstance(values[key], bool):
            errors.append(f"'{key}' must be True or False, not {values[key]!r}")
            values[key] = DEFAULT_SETTINGS[key]
    for key, minimum in _INT_KEYS.items():
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            errors.append(f"'{key}' must be a number ≥ {minimum}, not {value!r}")
            values[key] = DEFAULT_SETTINGS[key]
    if not isinstance(values["health_check_timeout"], (int, float)) or values["health_check_timeout"] <= 0:
        errors.append(f"'health_check_timeout' must be a positive number, not {values['health_check_timeout']!r}")
        values["health_check_timeout"] = DEFAULT_SETTINGS["health_check_timeout"]
    for key in _STR_KEYS:
        if not isinstance(values[key], str):
            errors.append(f"'{key}' must be a string")
            values[key] = DEFAULT_SETTINGS[key]
    for key in _URL_KEYS:
        url = values[key]
        if url and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc):
            errors.append(f"'{key}' must be an http(s) URL like http://127.0.0.1:4000, not {url!r}")
            values[key] = DEFAULT_SETTINGS[key]
        values[key] = values[key].rstrip("/")
    for key in ("excluded_models", "excluded_fields", "fallback_order"):
        if not isinstance(values[key], (list, tuple)) or not all(isinstance(v, str) for v in values[key]):
            errors.append(f"'{key}' must be a list of strings")
            values[key] = list(DEFAULT_SETTINGS[key])
    if values["grounding_mode"] not in GROUNDING_MODES:
        errors.append(f"'grounding_mode' must be one of {', '.join(GROUNDING_MODES)}, not {values['grounding_mode']!r}")
        values["grounding_mode"] = DEFAULT_SETTINGS["grounding_mode"]
    if not isinstance(values["models"], dict):
        errors.append("'models' must be a dict of model id → settings (or None to remove a model)")
        values["models"] = {}
    values["budgets"] = _validate_budgets(values["budgets"], errors)
    values["anthropic_api_key"] = values["anthropic_api_key"] or os.environ.get("ANTHROPIC_API_KEY", "")
    values["litellm_master_key"] = values["litellm_master_key"] or os.environ.get("LITELLM_MASTER_KEY", "")
    if values["litellm_enabled"] and values["litellm_proxy_url"] and not values["litellm_master_key"]:
        errors.append("'litellm_master_key' is required when 'litellm_proxy_url' is set (the proxy must not run open)")
    return values, errors


BUDGET_LIMITS = ("day_tokens", "month_tokens", "day_cost_usd", "month_cost_usd")


def _validate_limits(where, limits, errors) -> dict:
    if not isinstance(limits, dict):
        errors.append(f"'budgets'{where} must be a dict of limits ({', '.join(BUDGET_LIMITS)})")
        return {}
    clean = {}
    for key, value in limits.items():
        if key not in BUDGET_LIMITS:
            errors.append(f"'budgets'{where}: unknown limit {key!r} (valid: {', '.join(BUDGET_LIMITS)})")
        elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            errors.append(f"'budgets'{where}['{key}'] must be a number ≥ 0 or None, not {value!r}")
        else:
            clean[key] = value
    return clean


def _validate_budgets(budgets, errors) -> dict:
    """The budgets with bad parts dropped (each reported); an invalid limit is no limit, not a crash."""
    if not isinstance(budgets, dict):
        errors.append("'budgets' must be a dict like {'default': {'day_tokens': 100000}}")
        return {}
    for key in sorted(set(budgets) - {"default", "groups", "exempt_local_models"}):
        errors.append(f"'budgets': unknown key {key!r} (valid: default, groups, exempt_local_models)")
    clean = {
        "default": _validate_limits("['default']", budgets.get("default") or {}, errors),
        "groups": {},
        "exempt_local_models": budgets.get("exempt_local_models", True),
    }
    if not isinstance(clean["exempt_local_models"], bool):
        errors.append("'budgets'['exempt_local_models'] must be True or False")
        clean["exempt_local_models"] = True
    groups = budgets.get("groups") or {}
    if not isinstance(groups, dict):
        errors.append("'budgets'['groups'] must be a dict of NetBox group name → limits")
        groups = {}
    for name, limits in groups.items():
        clean["groups"][str(name)] = _validate_limits(f"['groups'][{name!r}]", limits, errors)
    return clean


_cache: dict = {}


def get_settings() -> Settings:
    """The validated settings, computed once per process (tests call :func:`reset`)."""
    if "settings" not in _cache:
        values, errors = validate(_raw_config())
        _cache["settings"] = Settings(values, errors)
    return _cache["settings"]


def reset():
    """Forget cached settings and catalog (used by tests that change PLUGINS_CONFIG)."""
    _cache.clear()


def _on_setting_changed(setting, **kwargs):
    if setting == "PLUGINS_CONFIG":
        reset()


from django.core.signals import setting_changed  # noqa: E402

setting_changed.connect(_on_setting_changed)
