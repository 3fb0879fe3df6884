"""The model catalog: which model ids exist, how each one is routed, and validation.

One table (design.md's routing table) is the default allowlist; admins override it with
``PLUGINS_CONFIG['netbox_chatbox']['models']``. Every model id a client sends is looked up
here on the server; anything else is rejected.
"""

from dataclasses import asdict, dataclass, field, fields, replace

from .conf import _cache, get_settings

PATH_SDK = "sdk"  # path A: Claude Agent SDK
PATH_LITELLM = "litellm"  # path B: LiteLLM (proxy or direct to Ollama)


@dataclass(frozen=True)
class ModelEntry:
    id: str
    name: str
    provider: str  # "anthropic" | "ollama" | any LiteLLM provider
    description: str
    context_length: int
    sdk_model: str | None = None  # path A: model passed to the SDK (None = the SDK chooses)
    litellm_model: str | None = None  # path B: LiteLLM model name
    is_automatic: bool = False
    enabled: bool = True
    recommended: bool = False
    # Path B, direct mode: the model's own server (see endpoints.py). Never sent to clients.
    api_base: str | None = None  # e.g. http://127.0.0.1:8000/v1 for an OpenAI-compatible server
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None  # or the name of the environment variable holding the key
    local: bool | None = None  # costs nothing per token; None: Ollama or an entry with its own api_base

    @property
    def path(self) -> str:
        """Anthropic models take path A unless the admin allows them through LiteLLM."""
        if self.provider == "anthropic":
            if self.litellm_model and get_settings().allow_anthropic_via_litellm:
                return PATH_LITELLM
            return PATH_SDK
        return PATH_LITELLM

    @property
    def is_local(self) -> bool:
        """A model on the admin's own hardware: its tokens cost 0."""
        if self.local is not None:
            return bool(self.local)
        return self.provider == "ollama" or bool(self.api_base)

    def as_dict(self) -> dict:
        """What clients may see: no endpoint, key or key variable."""
        data = {k: v for k, v in asdict(self).items() if k not in _PRIVATE}
        return {**data, "local": self.is_local, "path": self.path}


DEFAULT_MODELS = (
    ModelEntry(
        "auto",
        "Claude (Automatic)",
        "anthropic",
        "The Claude Agent SDK's default Claude model; each answer names the model that wrote it.",
        200000,
        sdk_model=None,
        is_automatic=True,
        recommended=True,
    ),
    ModelEntry(
        "claude-sonnet-4-5",
        "Claude Sonnet 4.5",
        "anthropic",
        "Balanced performance and speed.",
        200000,
        sdk_model="claude-sonnet-4-5-20250929",
    ),
    ModelEntry(
        "claude-opus-4",
        "Claude Opus 4",
        "anthropic",
        "Most capable, for complex analysis.",
        200000,
        sdk_model="claude-opus-4-20250514",
    ),
    ModelEntry(
        "claude-haiku-4-5",
        "Claude Haiku 4.5",
        "anthropic",
        "Fastest and cheapest, for simple lookups.",
        200000,
        sdk_model="claude-haiku-4-5-20251001",
    ),
    ModelEntry(
        "ollama-qwen2.5",
        "Qwen 2.5 14B Instruct",
        "ollama",
        "Local Ollama model through LiteLLM; data stays on your network.",
        8192,
        litellm_model="ollama_chat/qwen2.5:14b-instruct-8k",
    ),
)

_FIELDS = {f.name for f in fields(ModelEntry)}
_PRIVATE = {"api_base", "api_key", "api_key_env"}


class ModelNotAvailable(ValueError):
    """The model id is not in the catalog, or is disabled."""


def build_catalog(overrides: dict) -> tuple[dict[str, ModelEntry], list[str]]:
    """Merge admin overrides into the default table; return (catalog, errors)."""
    settings = get_settings()
    catalog = {m.id: m for m in DEFAULT_MODELS}
    ollama = catalog["ollama-qwen2.5"]
    catalog[ollama.id] = replace(ollama, litellm_model=f"ollama_chat/{settings.ollama_model}")
    errors = []
    for model_id, override in overrides.items():
        if override is None:
            catalog.pop(model_id, None)
            continue
        if not isinstance(override, dict) or set(override) - _FIELDS:
            bad = sorted(set(override) - _FIELDS) if isinstance(override, dict) else override
            errors.append(f"models['{model_id}']: unknown fields {bad}; valid: {sorted(_FIELDS - {'id'})}")
            continue
        if model_id in catalog:
            catalog[model_id] = replace(catalog[model_id], **override)
            continue
        missing = {"name", "provider"} - set(override)
        if missing:
            errors.append(f"models['{model_id}']: a new model needs {sorted(missing)}")
            continue
        entry = ModelEntry(**{"description": "", "context_length": 8192, **override, "id": model_id})
        if entry.provider != "anthropic" and not entry.litellm_model:
            errors.append(f"models['{model_id}']: a non-Anthropic model needs 'litellm_model'")
            continue
        catalog[model_id] = entry
    return catalog, errors


def get_catalog() -> dict[str, ModelEntry]:
    if "catalog" not in _cache:
        _cache["catalog"], _cache["catalog_errors"] = build_catalog(get_settings().models)
    return _cache["catalog"]


def catalog_errors() -> list[str]:
    get_catalog()
    return _cache["catalog_errors"]


def is_configured(entry: ModelEntry) -> bool:
    """Whether the admin's settings allow this model at all (health aside)."""
    if entry.path == PATH_LITELLM:
        return get_settings().litellm_enabled
    return True


def enabled_models() -> list[ModelEntry]:
    """Models users may pick, recommended first."""
    models = [m for m in get_catalog().values() if m.enabled and is_configured(m)]
    return sorted(models, key=lambda m: not m.recommended)


def get_model(model_id) -> ModelEntry:
    """Validate a client-supplied model id. Raises ModelNotAvailable with a readable message."""
    entry = get_catalog().get(model_id) if isinstance(model_id, str) else None
    if entry is None:
        valid = ", ".join(m.id for m in enabled_models())
        raise ModelNotAvailable(f"Unknown model '{model_id}'. Valid models: {valid}.")
    if not entry.enabled:
        raise ModelNotAvailable(f"Model '{model_id}' is disabled by the administrator.")
    if not is_configured(entry):
        raise ModelNotAvailable(f"Model '{model_id}' needs LiteLLM, which is not enabled on this NetBox.")
    return entry


def default_model_id() -> str:
    """The admin's default, or the first enabled model if that one is unusable."""
    wanted = get_settings().default_model
    try:
        return get_model(wanted).id
    except ModelNotAvailable:
        models = enabled_models()
        return models[0].id if models else wanted
