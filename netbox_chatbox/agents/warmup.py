"""Import path B's provider library in the background when an ASGI worker starts.

litellm takes 4–6 s to import; imported on first use, the first local-model answer after a worker
(re)starts waited that long. ``netbox_chatbox.asgi`` calls :func:`start` once the application exists:
one daemon thread imports it while the server already answers, so NetBox's start-up is not slowed and
a request never runs the warm-up itself (one that needs litellm while it is still being imported waits
for that import, in its worker thread, as it would have without the warm-up). Management commands and
gunicorn never import ``netbox_chatbox.asgi``, so they never load litellm. Path A's claude-agent-sdk
(1–2 s) stays on first use: it imports ``mcp``, which processes that never serve MCP must not load, and
a Claude answer starts a CLI process anyway.
"""

import gc
import importlib
import logging
import threading

logger = logging.getLogger("netbox_chatbox.agents")

THREAD_NAME = "netbox-chatbox-warm-up"
GC_THRESHOLD = 7000  # allocations between collections of the youngest generation (Python's default: 700)


def modules() -> list[str]:
    """The agent modules to import: path B's when the admin enabled it and the catalog has such a model."""
    from .. import catalog
    from . import _MODULES

    configured = any(
        entry.path == catalog.PATH_LITELLM and catalog.is_configured(entry) for entry in catalog.get_catalog().values()
    )
    return [_MODULES[catalog.PATH_LITELLM][0]] if configured else []


def warm_up():
    """Import the agent modules and touch what their first answer would build lazily."""
    for name in modules():
        try:
            importlib.import_module(name)
            from litellm.types.utils import ModelResponseStream

            ModelResponseStream(id="warm-up", choices=[])  # pydantic builds its validators on first use
        except Exception:  # the first request reports the problem, with its own context
            logger.warning("warming up %s failed", name, exc_info=True)
    settle_garbage_collector()


def settle_garbage_collector():
    """Keep the cyclic garbage collector off what start-up loaded, and run it less often.

    Measured during bursts of chats (bench/ws_bench.py, gc callbacks): with Python's defaults the collector
    used ~17 % of the server's CPU, mostly walking the ~900,000 objects of Django, NetBox and litellm that
    live as long as the process. Frozen, they are never walked again; with the youngest generation
    collected every 7,000 allocations instead of 700, the older ones are reached 10x less often
    (~4 % of the CPU left). Only the ASGI server's processes run this (``netbox_chatbox.asgi``).
    """
    gc.freeze()
    threshold, *older = gc.get_threshold()
    gc.set_threshold(max(threshold, GC_THRESHOLD), *older)


def start() -> threading.Thread:
    thread = threading.Thread(target=warm_up, name=THREAD_NAME, daemon=True)
    thread.start()
    return thread
