"""Structured log events about model use: routing decisions, requests, responses, errors.

Everything goes to the ``netbox_chatbox.telemetry`` logger. Each record's message is a readable
``event key=value …`` line, and ``record.chatbox`` holds the same fields as a dict for JSON log
formatters. Usage events (requests, responses) follow ``log_model_usage``; routing decisions,
fallbacks and errors are always logged. Never logged: message or answer text, tool arguments,
API keys (error details pass through :func:`redact`).
"""

import logging
import re

from . import endpoints
from .conf import get_settings

logger = logging.getLogger("netbox_chatbox.telemetry")

_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{2})[A-Za-z0-9_\-]{6,}")
_BEARER_PATTERN = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)


def redact(text) -> str:
    """``text`` with the configured secrets and anything shaped like an API key masked."""
    text = str(text)
    settings = get_settings()
    for secret in (settings.anthropic_api_key, settings.litellm_master_key, *endpoints.configured_keys()):
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _BEARER_PATTERN.sub(r"\1[redacted]", text)
    return _KEY_PATTERN.sub(r"\1…[redacted]", text)


def _emit(level, event, **fields):
    fields = {k: v for k, v in fields.items() if v is not None}
    text = " ".join(f"{k}={v}" for k, v in fields.items())
    logger.log(level, "%s %s", event, text, extra={"chatbox": {"event": event, **fields}})


def _username(user):
    return getattr(user, "username", None)


def routing_decision(requested_model, requested_path, actual_model, actual_path, reason, user=None):
    """Which agent answers a new session; a WARNING when it is not the one the user asked for."""
    fell_back = (requested_model, requested_path) != (actual_model, actual_path)
    _emit(
        logging.WARNING if fell_back else logging.INFO,
        "routing_decision",
        requested_model=requested_model,
        requested_path=requested_path,
        actual_model=actual_model,
        actual_path=actual_path,
        reason=reason,
        fallback=fell_back,
        user=_username(user),
    )


def warning(event, **fields):
    """A configuration choice an admin should know about (e.g. Anthropic through LiteLLM)."""
    _emit(logging.WARNING, event, **fields)


def model_request(model, path, user=None, turn=None):
    if get_settings().log_model_usage:
        _emit(logging.INFO, "model_request", model=model, path=path, user=_username(user), turn=turn)


def model_response(
    model,
    path,
    *,
    duration_ms,
    input_tokens=None,
    output_tokens=None,
    cost_usd=None,
    tool_calls=0,
    interrupted=False,
    answered_by=None,
    user=None,
):
    if get_settings().log_model_usage:
        _emit(
            logging.INFO,
            "model_response",
            model=model,
            path=path,
            answered_by=answered_by,
            duration_ms=duration_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd,
            tool_calls=tool_calls,
            interrupted=interrupted,
            user=_username(user),
        )


def tool_call(tool, user, *, via, ok, duration_ms=None, error=None):
    """One tool call made outside a chat turn (``via="mcp"``), per user and tool; follows ``log_model_usage``."""
    if get_settings().log_model_usage:
        _emit(
            logging.INFO,
            "tool_call",
            tool=tool,
            via=via,
            ok=ok,
            error=error,
            duration_ms=duration_ms,
            user=_username(user),
        )


def model_error(model, path, code, detail="", user=None, duration_ms=None):
    """An error event sent to the user; ``detail`` (for the admin) is redacted."""
    _emit(
        logging.WARNING,
        "model_error",
        model=model,
        path=path,
        code=code,
        detail=redact(detail)[:500] if detail else None,
        duration_ms=duration_ms,
        user=_username(user),
    )


def health_change(service, ok, reason=""):
    """A dependency changed state (logged once per change, not once per check)."""
    _emit(
        logging.INFO if ok else logging.WARNING,
        "health",
        service=service,
        ok=ok,
        reason=redact(reason) if reason else None,
    )
