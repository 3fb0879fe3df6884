"""Are the model providers usable right now? Async checks, cached, each bounded by a short timeout.

- Anthropic (path A): an API key is configured and ``GET /v1/models`` accepts it (no tokens spent); a
  turn that fails at the provider marks it down for the TTL too (:func:`mark_down`).
- LiteLLM proxy (path B, proxy mode): ``/health/readiness`` answers (never ``/health``: that one runs
  a real completion on every model), and ``/v1/models`` accepts the master key and lists the model.
- Ollama: ``/api/tags`` lists the configured model.
- An OpenAI-compatible server (vLLM, llama.cpp, LM Studio…: an entry with ``api_base``): ``/models``
  under that base accepts the entry's key and lists the model.
- A path B entry that cannot be called as configured (endpoints.py) is unavailable, checked first.

Results are cached per service for ``health_cache_ttl`` seconds; a check never takes longer than
``health_check_timeout``; concurrent callers (a burst of new chats) share one check under way. Reasons are
written for users (no URLs or keys); details go to the log.
"""

import asyncio
import logging
import os
import time
from dataclasses import dataclass

import httpx

from . import endpoints, telemetry
from .catalog import PATH_LITELLM, ModelEntry, is_configured
from .conf import get_settings

logger = logging.getLogger("netbox_chatbox.health")


@dataclass(frozen=True)
class Status:
    ok: bool
    reason: str = ""  # why not, for users


OK = Status(True)
_cache: dict[tuple, tuple[float, Status]] = {}  # key → (expires at, status)
_last_state: dict[str, bool] = {}
_running: dict[tuple, asyncio.Task] = {}  # (event loop, key) → the check under way
_generation = 0  # a check started before reset() must not store its result after it


def reset():
    """Forget cached results (tests; an admin changing settings restarts NetBox anyway)."""
    global _generation
    _generation += 1
    _cache.clear()
    _last_state.clear()
    _running.clear()


async def _cached(key: tuple, label: str, check) -> Status:
    hit = _cache.get(key)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    running = (asyncio.get_running_loop(), key)  # a task can only be awaited on its own loop
    if (task := _running.get(running)) is None:
        task = _running[running] = asyncio.get_running_loop().create_task(_check(key, label, check))
        task.add_done_callback(lambda done: _running.pop(running) if _running.get(running) is done else None)
    return await asyncio.shield(task)  # a caller that goes away doesn't cancel the others' check


async def _check(key: tuple, label: str, check) -> Status:
    generation, settings = _generation, get_settings()
    try:
        async with httpx.AsyncClient(timeout=settings.health_check_timeout) as client:
            status = await asyncio.wait_for(check(client), settings.health_check_timeout)
    except (TimeoutError, httpx.TimeoutException):
        status = Status(False, f"The {label} did not answer within {settings.health_check_timeout:g} s.")
    except httpx.HTTPStatusError as exc:
        status = Status(False, f"The {label} answered with an error (HTTP {exc.response.status_code}).")
    except httpx.HTTPError as exc:
        logger.info("%s health check failed: %s", label, telemetry.redact(exc))
        status = Status(False, f"The {label} is not reachable.")
    except (ValueError, AttributeError) as exc:  # not the JSON we expect: something else answers there
        logger.info("%s health check got an unexpected answer: %s", label, telemetry.redact(exc))
        status = Status(False, f"The {label} gave an unexpected answer.")
    if generation != _generation:  # reset() meanwhile: this result may be stale
        return status
    _cache[key] = (time.monotonic() + settings.health_cache_ttl, status)
    if _last_state.get(key[0]) != status.ok:
        _last_state[key[0]] = status.ok
        telemetry.health_change(key[0], status.ok, status.reason)
    return status


def check_anthropic() -> Status:
    if get_settings().anthropic_api_key:
        return OK
    return Status(False, "No Anthropic API key is configured on this NetBox.")


ANTHROPIC_API = "https://api.anthropic.com"


def anthropic_base_url() -> str:
    """Where the Claude CLI sends requests: the setting, else its ANTHROPIC_BASE_URL, else Anthropic's API."""
    return (get_settings().anthropic_base_url or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_API).rstrip("/")


async def check_anthropic_api() -> Status:
    """The key is configured and the Anthropic API (or the gateway) accepts it: ``GET /v1/models?limit=1``,
    which costs no tokens. Cached like every check; a failed turn marks it down (:func:`mark_down`)."""
    if not (status := check_anthropic()).ok:
        return status
    key, url = get_settings().anthropic_api_key, anthropic_base_url()

    async def check(client):
        response = await client.get(
            f"{url}/v1/models", params={"limit": 1}, headers={"x-api-key": key, "anthropic-version": "2023-06-01"}
        )
        if response.status_code in (401, 403):
            return Status(False, "The Anthropic API rejected the configured API key.")
        response.raise_for_status()
        response.json()["data"]
        return OK

    return await _cached(_anthropic_key(), "Anthropic API", check)


def _anthropic_key() -> tuple:
    return ("anthropic", anthropic_base_url(), get_settings().anthropic_api_key)


def mark_down(entry: ModelEntry, reason: str):
    """A turn on this model failed at the provider: it counts as down until the health TTL has passed."""
    if entry.path == PATH_LITELLM:
        return  # path B's checks ask the servers themselves; a failed turn may be one bad request
    ttl = get_settings().health_cache_ttl
    key = _anthropic_key()
    _cache[key] = (time.monotonic() + ttl, Status(False, reason))
    if _last_state.get(key[0]) is not False:
        _last_state[key[0]] = False
        telemetry.health_change(key[0], False, reason)


async def check_litellm_proxy(model_name: str) -> Status:
    """The proxy is ready, accepts our master key, and offers ``model_name``."""
    settings = get_settings()
    url, key = settings.litellm_proxy_url, settings.litellm_master_key

    async def check(client):
        ready = await client.get(f"{url}/health/readiness")
        if ready.status_code != 200:
            return Status(False, f"The LiteLLM proxy is not ready (HTTP {ready.status_code}).")
        models = await client.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"})
        if models.status_code in (400, 401, 403):  # without a database the proxy answers a wrong key with 400
            return Status(False, "The LiteLLM proxy rejected the configured master key.")
        models.raise_for_status()
        names = {m.get("id") for m in models.json().get("data", [])}
        if model_name not in names:
            return Status(False, f"The LiteLLM proxy does not offer the model '{model_name}'.")
        return OK

    return await _cached(("litellm_proxy", url, key, model_name), "LiteLLM proxy", check)


async def check_ollama(model_name: str, url: str | None = None) -> Status:
    """Ollama (at ``url``, default ``ollama_base_url``) answers and has ``model_name`` pulled."""
    url = (url or get_settings().ollama_base_url).rstrip("/")

    async def check(client):
        response = await client.get(f"{url}/api/tags")
        response.raise_for_status()
        names = {m.get("name") for m in response.json().get("models", [])}
        if model_name not in names and f"{model_name}:latest" not in names:
            return Status(False, f"Ollama does not have the model '{model_name}' (ollama pull {model_name}).")
        return OK

    return await _cached(("ollama", url, model_name), "Ollama server", check)


async def check_openai_server(api_base: str, key: str, model_name: str) -> Status:
    """The OpenAI-compatible server at ``api_base`` accepts ``key`` and offers ``model_name``."""
    url = api_base.rstrip("/")

    async def check(client):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = await client.get(f"{url}/models", headers=headers)
        if response.status_code in (401, 403):
            return Status(False, "The model server rejected the configured key.")
        response.raise_for_status()
        names = {m.get("id") for m in response.json().get("data", [])}
        if model_name not in names:
            return Status(False, f"The model server does not offer the model '{model_name}'.")
        return OK

    return await _cached((f"openai_server {url}", key, model_name), "model server", check)


def _note_configuration(entry: ModelEntry, problems: list[str]):
    """Log a misconfigured entry's exact problems once (and once more when it is fixed)."""
    service = f"model {entry.id} configuration"
    if problems and _last_state.get(service) is not False:
        _last_state[service] = False
        telemetry.health_change(service, False, "; ".join(problems))
    elif not problems and _last_state.get(service) is False:
        _last_state[service] = True
        telemetry.health_change(service, True)


def ollama_model_name(litellm_model: str) -> str | None:
    """``ollama_chat/qwen2.5:14b`` → ``qwen2.5:14b``; None for other providers."""
    provider, _, name = (litellm_model or "").partition("/")
    return name if provider in ("ollama", "ollama_chat") and name else None


async def model_status(entry: ModelEntry) -> tuple[bool, str]:
    """(available, reason) for one catalog entry; the reason is empty when available."""
    if entry.path != PATH_LITELLM:
        status = await check_anthropic_api()
        return status.ok, status.reason
    if not is_configured(entry):
        return False, "LiteLLM is not enabled on this NetBox."
    problems = endpoints.problems(entry)
    _note_configuration(entry, problems)
    if problems:
        return False, endpoints.MISCONFIGURED
    # One after the other, not gathered: usually both are cached, and every new chat passes here
    # (a burst of 200 spent most of this function creating and registering tasks).
    if get_settings().litellm_proxy_url and not (status := await check_litellm_proxy(entry.litellm_model)).ok:
        return False, status.reason
    if ollama_name := ollama_model_name(entry.litellm_model):
        if not (status := await check_ollama(ollama_name, entry.api_base)).ok:
            return False, status.reason
    elif (
        entry.api_base
        and (served := endpoints.served_name(entry))
        and not (status := await check_openai_server(entry.api_base, endpoints.api_key(entry), served)).ok
    ):
        return False, status.reason
    return True, ""


async def models_status(entries) -> dict[str, tuple[bool, str]]:
    """{model id: (available, reason)} for many entries, checked concurrently."""
    entries = list(entries)
    results = await asyncio.gather(*(model_status(entry) for entry in entries))
    return {entry.id: result for entry, result in zip(entries, results, strict=True)}
