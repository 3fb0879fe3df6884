"""How path A starts the Claude CLI: locked down, with only our NetBox tools, dying with its worker.

The CLI gets no built-in tools (no shell, files or web), only our NetBox tools (an in-process SDK MCP server
running as the asking user), no settings, CLAUDE.md or MCP config read from disk, a private HOME/config dir,
no transcripts on disk, no traffic other than the model API, and prompts delivered verbatim (no ``@file``
expansion, no slash commands). Apart from the agent so the whole lockdown reads (and is reviewed) in one place.
"""

import logging
import os
import shutil
import sys
from pathlib import Path

import claude_agent_sdk
from claude_agent_sdk import ClaudeAgentOptions, SdkMcpTool, ToolAnnotations, create_sdk_mcp_server

from .. import telemetry
from ..conf import get_settings
from ..prompts import system_prompt
from ..tools import enabled_tools
from .tooling import call_tool, result_text

logger = logging.getLogger("netbox_chatbox.agents")

MCP_SERVER = "netbox"
TOOL_PREFIX = f"mcp__{MCP_SERVER}__"
CLI_RETRIES = 2  # CLI-side retries per API call; 3 overloaded answers in a row switch to fallback_model

# The CLI is started through this launcher: it asks Linux to kill it when the thread that started it ends
# (prctl PR_SET_PDEATHSIG; the SDK's subprocess options offer no preexec hook), so a NetBox worker that
# dies (OOM killer, SIGKILL, a crash) takes its CLI processes with it instead of leaving ~250 MB orphans
# that keep reading the provider's stream. The check of the parent closes the race with a parent that died
# before prctl ran.
_LAUNCHER = """#!{python} -IS
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != {parent}:
    sys.exit("netbox-chatbox: the NetBox process that started the Claude CLI is gone")
os.execv({cli!r}, [{cli!r}, *sys.argv[1:]])
"""


def bundled_cli() -> str | None:
    """The CLI that claude-agent-sdk's wheel bundles (None: the SDK looks for one itself)."""
    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    return str(path) if path.is_file() else shutil.which("claude")


def cli_launcher(home: str) -> str | None:
    """Write the launcher into the CLI's private home; its path is the SDK's ``cli_path`` (Linux only)."""
    cli = bundled_cli()
    if cli is None or not sys.platform.startswith("linux"):
        return None
    path = Path(home) / "claude-launcher"
    path.write_text(_LAUNCHER.format(python=sys.executable, parent=os.getpid(), cli=cli))
    path.chmod(0o700)
    return str(path)


def mcp_tool_names() -> list[str]:
    """The names the CLI gives our tools, i.e. the only tools it may use."""
    return [TOOL_PREFIX + name for name in enabled_tools()]


def cli_options(model, scope, history, home: str) -> ClaudeAgentOptions:
    """The SDK's options for one session's CLI (``home``: its private HOME, config dir and cwd)."""
    settings = get_settings()
    env = {
        "ANTHROPIC_API_KEY": settings.anthropic_api_key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # else the CLI calls out (measured)
        "DISABLE_AUTOUPDATER": "1",
        "ENABLE_TOOL_SEARCH": "false",
        "HOME": home,
        "CLAUDE_CONFIG_DIR": home,
        "API_TIMEOUT_MS": str(int(settings.anthropic_timeout * 1000)),
        "CLAUDE_CODE_MAX_RETRIES": str(CLI_RETRIES),
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(settings.max_output_tokens),
    }
    if settings.anthropic_base_url:
        env["ANTHROPIC_BASE_URL"] = settings.anthropic_base_url
    fallback_model = settings.fallback_model or None
    server = create_sdk_mcp_server(MCP_SERVER, tools=[_mcp_tool(tool, scope) for tool in enabled_tools().values()])
    return ClaudeAgentOptions(
        model=model.sdk_model,  # None for "auto": the CLI chooses
        fallback_model=fallback_model if fallback_model != model.sdk_model else None,
        system_prompt=system_prompt(scope.user, history),
        mcp_servers={MCP_SERVER: server},
        tools=[],
        allowed_tools=mcp_tool_names(),
        permission_mode="dontAsk",
        setting_sources=[],
        strict_mcp_config=True,
        cwd=home,
        cli_path=cli_launcher(home),
        env=env,
        extra_args={"no-session-persistence": None},
        include_partial_messages=True,
        verbatim_prompts=True,
        max_turns=settings.max_tool_rounds + 1,
        stderr=lambda line: logger.debug("claude cli: %s", telemetry.redact(line)),
    )


def _mcp_tool(tool, scope) -> SdkMcpTool:
    async def handler(arguments):
        result = await call_tool(tool.name, arguments, scope)
        return {"content": [{"type": "text", "text": result_text(result)}], "is_error": "error" in result}

    # A result above maxResultSizeChars would be saved to disk for the (disabled) Read tool.
    limit = get_settings().tool_max_chars * 4
    return SdkMcpTool(
        tool.name,
        tool.description,
        tool.input_schema,
        handler,
        ToolAnnotations(readOnlyHint=True, maxResultSizeChars=limit),
    )
