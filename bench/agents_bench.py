"""Time to first token and total time per path, the plugin's agents vs calling the provider directly.

Everything runs against the local fakes (tests/fakes) in one process and one run, so the difference
between a "bare" row and the "plugin" row below it is the plugin's overhead:

- path B direct: bare ``litellm.acompletion`` → fake Ollama  vs  LiteLLMAgent (direct mode)
- path B proxy:  bare ``litellm.acompletion`` → LiteLLM proxy → fake Ollama  vs  LiteLLMAgent (proxy mode)
  (the bare calls send the agent's own request: its system prompt and the NetBox tool schemas)
- path A:        a bare connected ``ClaudeSDKClient`` turn → fake Anthropic  vs  ClaudeAgent turn

Times run from sending the question to the first text token (TTFT) and to the end of the answer;
the fakes answer instantly, so the figures are pure client/proxy/plugin overhead.

Also: the Claude CLI's resident memory per open session, and the proxy's.
Targets (issue 4): path B adds < 30 ms to TTFT over direct litellm; path A adds < 50 ms over a bare
ClaudeSDKClient turn once connected.

    .venv/bin/python bench/agents_bench.py [--turns 30]
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "devconf")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from netbox_chatbox import conf, health  # noqa: E402
from netbox_chatbox.agents import create_agent  # noqa: E402
from netbox_chatbox.events import Delta  # noqa: E402
from tests.fakes import FakeAnthropic, FakeOllama, LiteLLMProxy, OutsideTrafficTrap  # noqa: E402
from tests.fakes.anthropic import Text as AnthropicText  # noqa: E402
from tests.fakes.ollama import Text as OllamaText  # noqa: E402

ANSWER = ["The ", "answer ", "is ", "42."]
MODEL = "qwen2.5:14b-instruct-8k"


def configure(**keys):
    settings.PLUGINS_CONFIG["netbox_chatbox"] = {**settings.PLUGINS_CONFIG.get("netbox_chatbox", {}), **keys}
    conf.reset()
    health.reset()


async def timed(open_stream, is_token):
    """(seconds to first token, seconds to the end), from the request on: ``open_stream()`` sends it."""
    started = time.perf_counter()
    first = None
    async for item in await open_stream():
        if first is None and is_token(item):
            first = time.perf_counter() - started
    return first, time.perf_counter() - started


def stream_of(agent):
    async def open_stream():
        return agent.stream("hi")  # the request goes out on the first iteration, inside the timing

    return open_stream


def is_delta(event):
    return isinstance(event, Delta)


def summary(samples):
    ttft = [s[0] * 1000 for s in samples]
    total = [s[1] * 1000 for s in samples]
    return statistics.median(ttft), sorted(ttft)[int(len(ttft) * 0.9) - 1], statistics.median(total)


async def interleaved(turns, bare_one, plugin_one):
    """Alternate bare and plugin samples, so machine load hits both alike; one warm-up each."""
    await bare_one()
    await plugin_one()
    bare, plugin = [], []
    for _ in range(turns):
        bare.append(await bare_one())
        plugin.append(await plugin_one())
    return bare, plugin


# -- path B --------------------------------------------------------------------------------------


def bare_litellm(user, **call):
    """The same request the agent sends (system prompt, tools), made with litellm directly."""
    import litellm

    from netbox_chatbox.agents.litellm import function_schemas
    from netbox_chatbox.prompts import system_prompt

    messages = [{"role": "system", "content": system_prompt(user)}, {"role": "user", "content": "hi"}]

    async def request():
        return await litellm.acompletion(
            messages=messages, tools=function_schemas(), stream=True, stream_options={"include_usage": True}, **call
        )

    async def one():
        return await timed(request, lambda chunk: chunk.choices and chunk.choices[0].delta.content)

    return one


def plugin_path_b(user):
    async def one():
        agent = await create_agent("ollama-qwen2.5", user)  # a fresh conversation each time: same request size
        try:
            return await timed(stream_of(agent), is_delta)
        finally:
            await agent.close()

    return one


# -- path A --------------------------------------------------------------------------------------


async def bare_sdk_client(fake):
    """A connected ClaudeSDKClient with the minimum for running offline against the fake."""
    from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient

    home = tempfile.mkdtemp(prefix="bench-bare-sdk-")
    client = ClaudeSDKClient(
        ClaudeAgentOptions(
            tools=[],
            setting_sources=[],
            cwd=home,
            include_partial_messages=True,
            extra_args={"no-session-persistence": None},
            env={
                "ANTHROPIC_BASE_URL": fake.url,
                "ANTHROPIC_API_KEY": "sk-ant-bench",
                "HOME": home,
                "CLAUDE_CONFIG_DIR": home,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            },
        )
    )
    started = time.perf_counter()
    await client.connect()
    return client, time.perf_counter() - started


def bare_sdk_turn(client):
    def is_token(message):
        event = getattr(message, "event", None)
        return bool(event) and event.get("type") == "content_block_delta"

    async def request():
        await client.query("hi")
        return client.receive_response()

    async def one():
        return await timed(request, is_token)

    return one


def plugin_path_a_turn(agent):
    async def one():
        return await timed(stream_of(agent), is_delta)

    return one


def cli_rss_kb():
    """Resident memory of this process's Claude CLI children, in kB each."""
    sizes = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("PPid", "0")) == os.getpid() and b"claude" in cmdline.split(b"\0")[0]:
            sizes.append(int(fields["VmRSS"].split()[0]))
    return sizes


async def session_memory(user, sessions=3):
    agents = [await create_agent("auto", user) for _ in range(sessions)]
    try:
        for agent in agents:
            async for _ in agent.stream("hi"):
                pass
        return cli_rss_kb()
    finally:
        for agent in agents:
            await agent.close()


async def main(turns):
    trap = OutsideTrafficTrap().install()
    fake_anthropic, fake_ollama = FakeAnthropic().start(), FakeOllama().start()
    fake_anthropic.always(AnthropicText(ANSWER))
    fake_ollama.always(OllamaText(ANSWER))
    proxy = LiteLLMProxy(ollama_url=fake_ollama.url).start()
    user = get_user_model()(username="bench")
    configure(
        anthropic_api_key="sk-ant-bench",
        anthropic_base_url=fake_anthropic.url,
        litellm_enabled=True,
        litellm_max_retries=0,
        ollama_base_url=fake_ollama.url,
        health_cache_ttl=3600,
        log_model_usage=False,
    )
    rows = []
    try:
        configure(litellm_proxy_url="")
        bare, plugin = await interleaved(
            turns, bare_litellm(user, model=f"ollama_chat/{MODEL}", api_base=fake_ollama.url), plugin_path_b(user)
        )
        rows += [
            ("B direct", "bare litellm → Ollama", summary(bare)),
            ("B direct", "plugin LiteLLMAgent", summary(plugin)),
        ]
        configure(litellm_proxy_url=proxy.url, litellm_master_key=proxy.master_key)
        bare, plugin = await interleaved(
            turns,
            bare_litellm(
                user, model=f"litellm_proxy/ollama_chat/{MODEL}", api_base=proxy.url, api_key=proxy.master_key
            ),
            plugin_path_b(user),
        )
        rows += [
            ("B proxy", "bare litellm → proxy", summary(bare)),
            ("B proxy", "plugin LiteLLMAgent", summary(plugin)),
        ]
        client, bare_connect = await bare_sdk_client(fake_anthropic)
        started = time.perf_counter()
        agent = await create_agent("auto", user)
        plugin_connect = time.perf_counter() - started
        try:
            bare, plugin = await interleaved(turns, bare_sdk_turn(client), plugin_path_a_turn(agent))
        finally:
            await client.disconnect()
            shutil.rmtree(client.options.cwd, ignore_errors=True)
            await agent.close()
        rows += [("A", "bare ClaudeSDKClient", summary(bare)), ("A", "plugin ClaudeAgent", summary(plugin))]
        rss = await session_memory(user)
        proxy_rss = proxy.rss_kb()
    finally:
        proxy.stop()
        fake_anthropic.stop()
        fake_ollama.stop()

    print(f"\n{turns} turns per row, bare and plugin interleaved, after one warm-up each; milliseconds\n")
    print(f"{'path':<9} {'client':<24} {'TTFT':>8} {'p90':>8} {'total':>8}   (TTFT, total: medians)")
    for path, name, (ttft, p90, total) in rows:
        print(f"{path:<9} {name:<24} {ttft:8.1f} {p90:8.1f} {total:8.1f}")
    for index in range(0, len(rows), 2):
        (path, _, bare_row), (_, _, plugin_row) = rows[index], rows[index + 1]
        print(
            f"plugin overhead, path {path:<9}: TTFT {plugin_row[0] - bare_row[0]:+6.1f} ms, "
            f"total {plugin_row[2] - bare_row[2]:+6.1f} ms"
        )
    print(f"LiteLLM proxy over direct litellm (bare rows): TTFT {rows[2][2][0] - rows[0][2][0]:+.1f} ms")
    print(f"connect (CLI start): bare {bare_connect * 1000:.0f} ms, plugin agent {plugin_connect * 1000:.0f} ms")
    print(f"Claude CLI RSS per open session: {', '.join(f'{kb / 1024:.0f} MB' for kb in rss)}")
    print(f"LiteLLM proxy process RSS: {proxy_rss / 1024:.0f} MB")
    print(f"outside traffic attempts: {trap.attempts or 'none'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=30)
    asyncio.run(main(parser.parse_args().turns))
