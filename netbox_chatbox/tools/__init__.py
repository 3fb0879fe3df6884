"""The one registry of NetBox data tools, used by both model paths.

Path A exposes TOOLS as an in-process SDK MCP server, path B as OpenAI-style function schemas;
both call :func:`run_tool`, which validates the arguments, runs the handler as the asking user in
a read-only transaction with a statement timeout, and keeps the result under the size caps.

Layout: ``registry`` (the tools and their schemas), ``run`` (running one), ``handlers`` (the generic
read tools) with ``serialize``, ``filters`` + ``reads``, ``ordering`` and ``changelog``; ``computed/``
(NetBox's calculations); ``visibility`` (what a user may view); ``types`` (the exposed object types).
"""

from .registry import TOOLS, Tool
from .run import enabled_tools, result_objects, run_tool

__all__ = ("TOOLS", "Tool", "enabled_tools", "result_objects", "run_tool")
