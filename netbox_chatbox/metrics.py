"""Prometheus metrics of the chat, served in NetBox's own ``/metrics`` when ``METRICS_ENABLED`` is on.

NetBox exports metrics with django-prometheus, whose view reads prometheus_client's default registry,
or, when the server sets ``PROMETHEUS_MULTIPROC_DIR`` (several worker processes), the files every
worker writes there. These metrics live in the same registry, so both modes work unchanged; the gauges
use the ``livesum`` mode (the sum over live processes; gunicorn's ``child_exit`` hook should call
``prometheus_client.multiprocess.mark_process_dead``, as prometheus_client documents).

They are recorded where a turn is stored (sessions), from the same figures as the stored message, so
the counters add up to what the usage view shows for the same turns.
"""

from decimal import Decimal

from django.conf import settings

_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
_metrics = {}


def enabled() -> bool:
    return bool(getattr(settings, "METRICS_ENABLED", False))


def _m():
    """The metric objects, created on first use (only when metrics are on)."""
    if not _metrics:
        from prometheus_client import Counter, Gauge, Histogram

        labels = ("model", "path")
        _metrics.update(
            turns=Counter(
                "netbox_chatbox_turns",
                "Chat turns by model, path and outcome (ok, interrupted, error)",
                (*labels, "outcome"),
            ),
            errors=Counter(
                "netbox_chatbox_turn_errors", "Chat turns that ended with an error, by code", (*labels, "code")
            ),
            fallbacks=Counter("netbox_chatbox_fallback_turns", "Turns answered by the fallback model", labels),
            tokens=Counter(
                "netbox_chatbox_tokens", "Tokens used, by direction (input, output)", (*labels, "direction")
            ),
            cost=Counter("netbox_chatbox_cost_usd", "Cost reported by the provider, in USD", labels),
            budget=Counter(
                "netbox_chatbox_budget_refusals", "Questions refused because a usage limit was reached", ("limit",)
            ),
            tools=Counter(
                "netbox_chatbox_tool_calls", "NetBox tool calls by tool and outcome (ok, error)", ("tool", "outcome")
            ),
            mcp_tools=Counter(
                "netbox_chatbox_mcp_tool_calls",
                "NetBox tool calls from users' own AI clients (MCP) by tool and outcome",
                ("tool", "outcome"),
            ),
            ttft=Histogram(
                "netbox_chatbox_time_to_first_token_seconds",
                "Seconds from the question reaching the model to the first answer text",
                labels,
                buckets=_LATENCY_BUCKETS,
            ),
            duration=Histogram(
                "netbox_chatbox_turn_duration_seconds", "Seconds one answer took", labels, buckets=_LATENCY_BUCKETS
            ),
            sessions=Gauge(
                "netbox_chatbox_open_sessions",
                "Chat sessions with a live model agent",
                ("path",),
                multiprocess_mode="livesum",
            ),
            cli=Gauge(
                "netbox_chatbox_claude_cli_processes",
                "Claude Code CLI processes (one per path A session)",
                multiprocess_mode="livesum",
            ),
        )
    return _metrics


def turn_finished(
    model_id,
    path,
    *,
    outcome,
    code=None,
    fallback=False,
    input_tokens=None,
    output_tokens=None,
    cost_usd=None,
    duration_ms=None,
    first_token_s=None,
    tools=(),
):
    """Record one finished turn (``tools``: the stored tool calls, dicts with ``tool`` and ``ok``)."""
    if not enabled():
        return
    m = _m()
    m["turns"].labels(model_id, path, outcome).inc()
    if code:
        m["errors"].labels(model_id, path, code).inc()
    if fallback:
        m["fallbacks"].labels(model_id, path).inc()
    if input_tokens:
        m["tokens"].labels(model_id, path, "input").inc(input_tokens)
    if output_tokens:
        m["tokens"].labels(model_id, path, "output").inc(output_tokens)
    if cost_usd:
        m["cost"].labels(model_id, path).inc(float(Decimal(str(cost_usd))))
    if duration_ms is not None:
        m["duration"].labels(model_id, path).observe(duration_ms / 1000)
    if first_token_s is not None:
        m["ttft"].labels(model_id, path).observe(first_token_s)
    for call in tools:
        m["tools"].labels(str(call.get("tool", ""))[:64], "ok" if call.get("ok") else "error").inc()


def mcp_tool_call(tool, outcome):
    """One MCP tool call: ``outcome`` is ok, error, rate_limited or read_only_token."""
    if enabled():
        _m()["mcp_tools"].labels(str(tool)[:64], outcome).inc()


def budget_refused(limit):
    if enabled():
        _m()["budget"].labels(limit).inc()


def agent_opened(path):
    if enabled():
        _m()["sessions"].labels(path).inc()
        if path == "sdk":
            _m()["cli"].inc()


def agent_closed(path):
    if enabled():
        _m()["sessions"].labels(path).dec()
        if path == "sdk":
            _m()["cli"].dec()
