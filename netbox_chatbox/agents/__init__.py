"""The agent factory: the right agent for a model id, or ``auto`` on path A when that model can't answer.

Routing comes from the catalog (path A: Claude Agent SDK; path B: LiteLLM); health decides whether
a path B model can answer now. The SDK and litellm take seconds to import, so they are imported
on first use, in a worker thread, never when the plugin loads.
"""

import asyncio
import importlib
import logging

from .. import catalog, health, telemetry
from ..conf import get_settings
from ..events import Fallback
from .base import BaseAgent

__all__ = ("AgentUnavailable", "BaseAgent", "FALLBACK_MODEL", "agent_class", "create_agent")

logger = logging.getLogger("netbox_chatbox.agents")

FALLBACK_MODEL = "auto"  # the plan's safe fallback: Claude with automatic model choice
_MODULES = {
    catalog.PATH_SDK: ("netbox_chatbox.agents.claude", "ClaudeAgent"),
    catalog.PATH_LITELLM: ("netbox_chatbox.agents.litellm", "LiteLLMAgent"),
}
_CLASSES: dict[str, type[BaseAgent]] = {}  # filled once each module is fully imported


class AgentUnavailable(Exception):
    """No agent can answer (e.g. no Anthropic API key); ``str(exc)`` is written for the user."""


async def agent_class(path: str) -> type[BaseAgent]:
    """The agent class for a path. Its SDK is imported in a worker thread so the event loop keeps
    going, once: later calls (a burst of new chats) don't queue behind other threads' work."""
    if (cls := _CLASSES.get(path)) is None:
        module_name, class_name = _MODULES[path]
        module = await asyncio.to_thread(importlib.import_module, module_name)
        cls = _CLASSES[path] = getattr(module, class_name)
    return cls


async def create_agent(model_id: str, user, history=()) -> BaseAgent:
    """A started agent for ``model_id`` and ``user``, resuming ``history`` ([{role, content}], optional).

    An unknown/disabled id or an unavailable model falls back along the admin's ``fallback_order``
    (default: ``auto`` on path A); the agent's ``fallback`` event says which model answers and why. Raises
    AgentUnavailable when no model can answer.
    """
    entry, requested_path, reason = await _requested(model_id)
    fallback = None
    if entry is None:
        try:
            requested = catalog.get_model(model_id)
        except catalog.ModelNotAvailable:
            requested = None
        entry = await _fallback_entry(reason, requested)
        fallback = Fallback(
            requested_model=str(model_id),
            actual_model=entry.id,
            requested_path=requested_path,
            actual_path=entry.path,
            reason=reason,
        )
    telemetry.routing_decision(str(model_id), requested_path, entry.id, entry.path, reason or "model available", user)
    if entry.provider == "anthropic" and entry.path == catalog.PATH_LITELLM:
        telemetry.warning(
            "anthropic_via_litellm",
            model=entry.id,
            note="allow_anthropic_via_litellm is on: no Claude Agent SDK features",
        )
    try:
        agent = (await agent_class(entry.path))(entry, user, fallback=fallback, history=history)
        await agent.start()
    except Exception as exc:
        logger.exception("starting the %s agent for model %s failed", entry.path, entry.id)
        telemetry.model_error(entry.id, entry.path, "start_failed", repr(exc), user)
        raise AgentUnavailable(
            f"The assistant ({entry.name}) could not be started on this NetBox server; "
            "ask your NetBox administrator to check its logs."
        ) from exc
    return agent


async def _requested(model_id):
    """(entry, path, "") when the requested model can answer, else (None, path, reason)."""
    try:
        entry = catalog.get_model(model_id)
    except catalog.ModelNotAvailable as exc:
        return None, "unknown", str(exc)
    available, reason = await health.model_status(entry)
    if available:
        return entry, entry.path, ""
    if entry.path == catalog.PATH_SDK and not _fallbacks(entry):  # nothing else to try
        raise AgentUnavailable(reason)
    return None, entry.path, f"{entry.name} is unavailable: {reason}"


def _fallbacks(requested) -> list[str]:
    """The admin's ``fallback_order`` (default: ``auto``), without the model that is down, nor its path A
    siblings when path A itself is down (they share the Anthropic API)."""
    order = get_settings().fallback_order or [FALLBACK_MODEL]
    skip_sdk = requested is not None and requested.path == catalog.PATH_SDK
    catalog_ = catalog.get_catalog()
    return [
        m
        for m in order
        if m != getattr(requested, "id", None)
        and not (skip_sdk and m in catalog_ and catalog_[m].path == catalog.PATH_SDK)
    ]


async def _fallback_entry(reason, requested=None):
    """The first model of the fallback order that can answer now."""
    why_not = "No other model is available."
    for model_id in _fallbacks(requested):
        try:
            entry = catalog.get_model(model_id)
        except catalog.ModelNotAvailable:
            continue
        available, why_not = await health.model_status(entry)
        if available:
            return entry
    raise AgentUnavailable(f"{reason} {why_not}")
