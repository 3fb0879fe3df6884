"""Where a path B catalog entry's requests go, with which key, and what is wrong with that.

Direct mode (no ``litellm_proxy_url``): ``litellm_model`` is a LiteLLM model string, ``provider/model``.
- ``ollama_chat/…`` / ``ollama/…``: Ollama at the entry's ``api_base`` or ``ollama_base_url``; no key.
- ``openai/…``, ``hosted_vllm/…``, ``lm_studio/…``, ``llamafile/…``: an OpenAI-compatible server
  (vLLM, llama.cpp's ``llama-server``, LM Studio, Ollama's ``/v1``…) at the entry's ``api_base``
  (required); a key only if the server wants one (``api_key`` or ``api_key_env``).
- any other LiteLLM provider (a hosted service): a key is required; ``api_base`` is optional.
Proxy mode: the proxy's config routes the model; an entry's ``api_base`` (and key) only serve the
health check of the server behind it.

Mistakes here are configuration errors: ``netbox check`` reports them (E004), such a model is shown
as unavailable, and a chat on it ends with :data:`MISCONFIGURED` for the user and the exact problem
in the log — never retried.
"""

import os
import sys
from urllib.parse import urlparse

from .conf import get_settings

MISCONFIGURED = "This model is not configured correctly on this NetBox; tell your administrator."
OLLAMA_PREFIXES = frozenset({"ollama", "ollama_chat"})
OPENAI_COMPATIBLE_PREFIXES = frozenset({"openai", "hosted_vllm", "lm_studio", "llamafile"})
# Servers need no key but the OpenAI client sends one: this one says so (never a secret).
NO_KEY = "no-key-configured"


class ConfigurationError(Exception):
    """An entry cannot be called as configured; ``str(exc)`` is the exact problem, for the admin's log."""


def split_model(litellm_model) -> tuple[str, str]:
    """``openai/llama-3.2-3b`` → ``("openai", "llama-3.2-3b")``; ``("", …)`` without a provider prefix."""
    prefix, slash, name = (litellm_model or "").partition("/")
    return (prefix, name) if slash and prefix and name else ("", litellm_model or "")


def served_name(entry) -> str | None:
    """The model name an OpenAI-compatible server lists in ``/v1/models`` for ``entry``, else None."""
    prefix, name = split_model(entry.litellm_model)
    return name if prefix in OPENAI_COMPATIBLE_PREFIXES else None


def api_key(entry) -> str:
    """The entry's key: ``api_key``, or the environment variable ``api_key_env`` names; "" when none."""
    if entry.api_key_env:
        return os.environ.get(entry.api_key_env, "")
    return entry.api_key or ""


def problems(entry, ask_litellm=False) -> list[str]:
    """What stops ``entry`` from being called (``[]`` when nothing), each naming the key to fix.

    An unusual provider prefix is checked against LiteLLM's list once litellm is imported (a path B
    answer imports it), or always with ``ask_litellm`` (which imports it: seconds).
    """
    if entry.provider == "anthropic":  # allow_anthropic_via_litellm: uses anthropic_api_key
        return []
    where = f"models['{entry.id}']"
    found = []
    for name in ("api_base", "api_key", "api_key_env"):
        if not isinstance(getattr(entry, name), (str, type(None))):
            found.append(f"{where}['{name}'] must be a string")
    if found:
        return found
    if entry.local is not None and not isinstance(entry.local, bool):
        found.append(f"{where}['local'] must be True, False or None")
    if entry.api_base and (
        urlparse(entry.api_base).scheme not in ("http", "https") or not urlparse(entry.api_base).netloc
    ):
        found.append(
            f"{where}['api_base'] must be an http(s) URL like http://127.0.0.1:8000/v1, not {entry.api_base!r}"
        )
    if entry.api_key and entry.api_key_env:
        found.append(f"{where}: set 'api_key' or 'api_key_env', not both")
    elif entry.api_key_env and not os.environ.get(entry.api_key_env):
        found.append(
            f"{where}['api_key_env']: the environment variable {entry.api_key_env} "
            "is not set (or empty) in NetBox's environment"
        )
    if get_settings().litellm_proxy_url:  # the proxy's config routes the model
        return found
    prefix, _ = split_model(entry.litellm_model)
    if not entry.litellm_model:
        found.append(f"{where} needs 'litellm_model'")
    elif not prefix:
        found.append(
            f"{where}['litellm_model'] {entry.litellm_model!r} has no provider prefix: write e.g. "
            f"'openai/{entry.litellm_model}' for an OpenAI-compatible server (with 'api_base') or "
            f"'ollama_chat/{entry.litellm_model}' for Ollama"
        )
    elif prefix in OPENAI_COMPATIBLE_PREFIXES:
        if not entry.api_base:
            found.append(
                f"{where} needs 'api_base', the OpenAI-compatible server's base URL (e.g. http://127.0.0.1:8000/v1)"
            )
    elif prefix not in OLLAMA_PREFIXES and not (entry.api_key or entry.api_key_env):
        found.append(f"{where} needs a key for the provider '{prefix}': 'api_key' or 'api_key_env'")
    if (ask_litellm or "litellm" in sys.modules) and not found and (unknown := _unknown_provider(entry)):
        found.append(unknown)
    return found


def _unknown_provider(entry) -> str | None:
    """The problem when LiteLLM does not know the entry's provider prefix (imports litellm: seconds)."""
    prefix, _ = split_model(entry.litellm_model)
    if not prefix or prefix in OLLAMA_PREFIXES | OPENAI_COMPATIBLE_PREFIXES or get_settings().litellm_proxy_url:
        return None
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    if prefix in litellm.provider_list:
        return None
    return (
        f"models['{entry.id}']['litellm_model'] {entry.litellm_model!r}: LiteLLM has no provider "
        f"'{prefix}' (for an OpenAI-compatible server use 'openai/…' with 'api_base')"
    )


def direct_arguments(entry) -> dict:
    """litellm's ``model``/``api_base``/``api_key`` for ``entry`` in direct mode; ConfigurationError if it can't be."""
    if found := problems(entry, ask_litellm=True):
        raise ConfigurationError("; ".join(found))
    prefix, _ = split_model(entry.litellm_model)
    arguments = {"model": entry.litellm_model}
    if prefix in OLLAMA_PREFIXES:
        return {**arguments, "api_base": entry.api_base or get_settings().ollama_base_url}
    if entry.api_base:
        arguments["api_base"] = entry.api_base.rstrip("/")
    key = api_key(entry)
    if key or prefix in OPENAI_COMPATIBLE_PREFIXES:
        arguments["api_key"] = key or NO_KEY
    return arguments


def configured_keys() -> list[str]:
    """Every key the catalog's entries hold, so logs can mask them."""
    from .catalog import get_catalog

    return [key for entry in get_catalog().values() if (key := api_key(entry)) and isinstance(key, str)]
