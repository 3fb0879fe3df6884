"""Concurrent WebSocket chats on one uvicorn worker, and model switch times (issue 5).

Starts, in separate processes: the fake providers (tests/fakes; each answer is ``--chunks`` tokens,
``--chunk-delay`` seconds apart, like a model generating) and ``uvicorn netbox_chatbox.asgi:application``
(``--workers``, default 1) on a bench database. Then, for each N in ``--sizes`` and each ramp in
``--ramps``: N users, each logged in with a real NetBox session, open N sockets and send one question
each, spread over ``ramp`` seconds (0: all in the same instant, the worst case). Measured:

- time to first token (TTFT: question sent → first ``delta``), p50 / p99
- inter-token gap (between consecutive ``delta`` events of one answer), p50 / p99
- errors (error events, missing ``complete``, socket failures)
- server CPU per answer, server RSS (the server and its children) before the round and at its peak
- the share of CPU the harness (fakes + clients, on the same machine) used during the round
- a NetBox page (``/api/status/``) fetched every 0.2 s during the round: p50 / p99 latency
- the control: the same N streams as bare ``litellm.acompletion`` calls in one process, same fake,
  so "server − control" is what NetBox, the socket, the sessions and storage add
- model switch per path: ``model_change`` sent → ``model_changed`` received, and on to the first token
  of the next answer (which starts the new agent: for Claude a CLI process)

Target: 200 concurrent path B streams with zero errors and p99 TTFT < 500 ms; switch < 2 s.

    .venv/bin/python bench/ws_bench.py [--sizes 10 50 200] [--ramps 0 2] [--chunks 60] [--chunk-delay 0.1]
                                       [--workers 1] [--json artifacts/bench/ws_bench.json]

Uses (and on first use creates from the NetBox schema snapshot) the database ``chatbox_bench`` and
Redis database 14 (CHATBOX_BENCH_DB / CHATBOX_BENCH_REDIS_DB), with CONN_MAX_AGE = 300 as NetBox's
example configuration has it.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB = os.environ.get("CHATBOX_BENCH_DB", "chatbox_bench")
REDIS_DB = os.environ.get("CHATBOX_BENCH_REDIS_DB", "14")
# The dev configuration with NetBox's documented CONN_MAX_AGE (configuration_example.py: 300 s); the dev
# value 0 opens a new PostgreSQL connection for every query batch.
CONFIG_DIR = Path(tempfile.mkdtemp(prefix="chatbox-bench-"))
(CONFIG_DIR / "bench_configuration.py").write_text(
    "from configuration import *  # noqa: F401,F403\nDATABASES['default']['CONN_MAX_AGE'] = 300\n"
)
ENV = {
    **os.environ,
    "PYTHONPATH": f"{CONFIG_DIR}:{ROOT / 'devconf'}:{ROOT}",
    "NETBOX_CONFIGURATION": "bench_configuration",
    "DJANGO_SETTINGS_MODULE": "netbox.settings",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "NETBOX_DB": DB,
    "NETBOX_REDIS_DB": REDIS_DB,
    "NETBOX_DEBUG": "0",
}
os.environ.update(
    {
        k: ENV[k]
        for k in (
            "NETBOX_CONFIGURATION",
            "DJANGO_SETTINGS_MODULE",
            "LITELLM_LOCAL_MODEL_COST_MAP",
            "NETBOX_DB",
            "NETBOX_REDIS_DB",
            "NETBOX_DEBUG",
        )
    }
)
sys.path[:0] = [str(CONFIG_DIR), str(ROOT / "devconf"), str(ROOT)]

# The fake providers, in their own process so their threads don't compete with the clients for one GIL.
FAKES = """
import http.server, sys
http.server.ThreadingHTTPServer.request_queue_size = 1024  # accept bursts of connections
from tests.fakes.anthropic import FakeAnthropic, Text as AText
from tests.fakes.ollama import FakeOllama, Text as OText
chunks, delay = int(sys.argv[1]), float(sys.argv[2])
words = [f"tok{i} " for i in range(chunks)]
class Ollama(FakeOllama):
    def default_reply(self, request):
        return OText(words, delay)
class Anthropic(FakeAnthropic):
    def default_reply(self, request):
        return AText(words, delay)
ollama, anthropic = Ollama().start(), Anthropic().start()
print(ollama.url, anthropic.url, flush=True)
sys.stdin.read()
"""


# The control: the same N streams as bare ``litellm.acompletion`` calls in one process (no NetBox, no socket,
# no storage), so "server TTFT − baseline TTFT" is what the plugin's transport and sessions add.
BASELINE = """
import asyncio, json, os, sys, time
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm
url, n, ramp = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
async def one(i):
    await asyncio.sleep(ramp * i / n)
    sent = time.perf_counter(); first = last = None; gaps = []
    response = await litellm.acompletion(model="ollama_chat/qwen2.5:14b-instruct-8k", api_base=url, stream=True,
        messages=[{"role": "system", "content": "You are a NetBox assistant."}, {"role": "user", "content": "hi"}])
    async for chunk in response:
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            if first is None: first = now - sent
            else: gaps.append(now - last)
            last = now
    return first, gaps
async def main():
    await one(0)  # warm up
    cpu = time.process_time()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    cpu = time.process_time() - cpu
    print(json.dumps({"ttfts": [r[0] for r in results], "gaps": [g for r in results for g in r[1]], "cpu": cpu}))
asyncio.run(main())
"""


def baseline(ollama_url, n, ramp):
    out = subprocess.run(
        [sys.executable, "-c", BASELINE, ollama_url, str(n), str(ramp)],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "streams": n,
        "ramp_s": ramp,
        "ttft_p50_ms": round(pct(data["ttfts"], 50) * 1000, 1),
        "ttft_p99_ms": round(pct(data["ttfts"], 99) * 1000, 1),
        "gap_p99_ms": round(pct(data["gaps"], 99) * 1000, 1),
        "cpu_ms_per_turn": round(data["cpu"] / n * 1000, 1),
    }


def run(*command):
    subprocess.run(command, check=True, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL)


def prepare_database():
    """Restore the NetBox schema snapshot into the bench DB once, then apply the plugin's migrations."""
    exists = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{DB}'"],
        capture_output=True,
        text=True,
    )
    if exists.stdout.strip() != "1":
        run("bash", "-c", f'source scripts/common.sh && restore_snapshot "{DB}"')
    run(str(ROOT / ".venv/bin/netbox"), "migrate", "--no-input")


def make_users(count):
    """``count`` chat users on the local model, each with a NetBox login session; returns their Cookie headers."""
    import django

    django.setup()
    from core.models import ObjectType
    from django.contrib.auth import get_user_model
    from django.test import Client
    from users.models import ObjectPermission

    from netbox_chatbox.models import Conversation
    from netbox_chatbox.preferences import PREFERENCE_PATH

    User = get_user_model()
    permission, _ = ObjectPermission.objects.get_or_create(name="bench-chat", defaults={"actions": ["chat"]})
    permission.object_types.add(ObjectType.objects.get_for_model(Conversation))
    cookies = []
    for i in range(count):
        user, created = User.objects.get_or_create(username=f"bench{i:03d}")
        if created:
            user.set_unusable_password()
            user.save()
        permission.users.add(user)
        user.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
        client = Client()
        client.force_login(user)
        cookies.append(f"sessionid={client.cookies['sessionid'].value}")
    return cookies


def process_tree(pid):
    """``pid`` and its live descendants (uvicorn workers, Claude CLI processes), from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except OSError:
                pass
    tree, todo = [pid], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            tree.append(child)
            todo.append(child)
    return tree


def rss_mb(pid):
    """Resident memory of the server: the process and its descendants."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            pass
    return total / 1024


def cpu_s(pid):
    """User + system CPU seconds the server (process and descendants) has used."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Chat:
    """One browser tab: a socket with a NetBox session cookie."""

    def __init__(self, url, cookie, origin):
        self.url, self.cookie, self.origin = url, cookie, origin
        self.ws = None

    async def open(self):
        from websockets.asyncio.client import connect

        self.ws = await connect(
            self.url, additional_headers={"Cookie": self.cookie}, origin=self.origin, open_timeout=60, max_queue=None
        )
        session = json.loads(await self.ws.recv())
        assert session["type"] == "session", session

    async def ask(self, question, timeout=120):
        """Send a question; return (ttft s, [gaps s], final event)."""
        sent = time.perf_counter()
        await self.ws.send(json.dumps({"type": "chat", "message": question}))
        first, last, gaps = None, None, []
        while True:
            event = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            now = time.perf_counter()
            if event["type"] == "delta":
                if first is None:
                    first = now - sent
                else:
                    gaps.append(now - last)
                last = now
            elif event["type"] in ("complete", "error"):
                return first, gaps, event

    async def request(self, message, until):
        sent = time.perf_counter()
        await self.ws.send(json.dumps(message))
        while True:
            event = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
            if event["type"] == until:
                return time.perf_counter() - sent, event
            if event["type"] == "error":
                raise RuntimeError(event)

    async def close(self):
        await self.ws.close()


async def probe_pages(base, stop, latencies):
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while not stop.is_set():
            started = time.perf_counter()
            await http.get("/api/status/")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)


async def round_(n, cookies, ws_url, base, server_pid, round_no, ramp, fakes_pid):
    chats = [Chat(ws_url, cookie, base) for cookie in cookies[:n]]
    await asyncio.gather(*(c.open() for c in chats))
    rss_before = rss_mb(server_pid)
    peak = [rss_before]
    stop = asyncio.Event()

    async def sample_rss():
        while not stop.is_set():
            peak.append(rss_mb(server_pid))
            await asyncio.sleep(0.1)

    page_latencies = []
    samplers = [asyncio.create_task(sample_rss()), asyncio.create_task(probe_pages(base, stop, page_latencies))]

    async def ask(i, chat):
        await asyncio.sleep(ramp * i / n)  # arrivals spread over ``ramp`` seconds (0: all at once)
        return await chat.ask(f"Round {round_no}: how many sites?")

    started, cpu_before = time.perf_counter(), cpu_s(server_pid)
    fakes_before, client_before = cpu_s(fakes_pid), time.process_time()
    results = await asyncio.gather(*(ask(i, c) for i, c in enumerate(chats)), return_exceptions=True)
    wall, cpu = time.perf_counter() - started, cpu_s(server_pid) - cpu_before
    harness_cpu = cpu_s(fakes_pid) - fakes_before + time.process_time() - client_before
    stop.set()
    await asyncio.gather(*samplers)
    await asyncio.gather(*(c.close() for c in chats), return_exceptions=True)
    ttfts, gaps, errors = [], [], []
    for result in results:
        if isinstance(result, BaseException):
            errors.append(repr(result))
            continue
        first, turn_gaps, final = result
        if final["type"] != "complete" or first is None:
            errors.append(final)
            continue
        ttfts.append(first)
        gaps.extend(turn_gaps)
    return {
        "streams": n,
        "ramp_s": ramp,
        "errors": len(errors),
        "error_samples": errors[:3],
        "wall_s": round(wall, 2),
        "server_cpu_ms_per_turn": round(cpu / n * 1000, 1),
        "harness_cpu_share": round(harness_cpu / (harness_cpu + cpu), 2),  # fakes + clients, same 2 cores
        "ttft_p50_ms": round(pct(ttfts, 50) * 1000, 1),
        "ttft_p99_ms": round(pct(ttfts, 99) * 1000, 1),
        "gap_p50_ms": round(pct(gaps, 50) * 1000, 1),
        "gap_p99_ms": round(pct(gaps, 99) * 1000, 1),
        "rss_before_mb": round(rss_before),
        "rss_peak_mb": round(max(peak)),
        "page_p50_ms": round(pct(page_latencies, 50) * 1000, 1),
        "page_p99_ms": round(pct(page_latencies, 99) * 1000, 1),
    }


async def switches(ws_url, base, cookie, repeats):
    """model_change times per direction, and model_change → first token of the next answer."""
    chat = Chat(ws_url, cookie, base)
    await chat.open()
    await chat.ask("warm up")  # path B agent exists
    times = {"to_claude": [], "to_claude_first_token": [], "to_ollama": [], "to_ollama_first_token": []}
    for _ in range(repeats):
        for target, key in (("claude-haiku-4-5", "to_claude"), ("ollama-qwen2.5", "to_ollama")):
            switched, _ = await chat.request({"type": "model_change", "model": target}, "model_changed")
            await chat.ws.recv()  # the session event
            first, _, final = await chat.ask("after the switch")
            assert final["type"] == "complete", final
            times[key].append(switched)
            times[f"{key}_first_token"].append(switched + first)
    await chat.close()
    return {k: round(statistics.median(v) * 1000, 1) for k, v in times.items()}


async def bench(args, cookies, ws_url, base, server_pid, ollama_url, fakes_pid):
    # Each worker imports litellm on its first path B turn (seconds): warm them all up first
    # (the kernel spreads connections over the workers).
    warm = [Chat(ws_url, cookie, base) for cookie in cookies[: 4 * args.workers]]
    await asyncio.gather(*(chat.open() for chat in warm))
    await asyncio.gather(*(chat.ask("warm up") for chat in warm))
    await asyncio.gather(*(chat.close() for chat in warm))
    rounds = []
    for i, n in enumerate(args.sizes):
        for ramp in args.ramps:
            result = await round_(n, cookies, ws_url, base, server_pid, f"{i}/{ramp}", ramp, fakes_pid)
            if args.baseline:
                result["baseline_litellm_only"] = await asyncio.to_thread(baseline, ollama_url, n, ramp)
            rounds.append(result)
            print(json.dumps(result), flush=True)
    switch = await switches(ws_url, base, cookies[-1], args.switch_repeats)
    print(json.dumps({"model_switch_ms": switch}), flush=True)
    return {"rounds": rounds, "model_switch_ms": switch}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--chunks", type=int, default=60, help="tokens per answer")
    parser.add_argument(
        "--chunk-delay",
        type=float,
        default=0.1,
        help="seconds between tokens at the fake (0.1: 10 tokens/s, a local 14B model under load)",
    )
    parser.add_argument(
        "--ramps",
        type=float,
        nargs="+",
        default=[0.0, 2.0],
        help="spread the N questions over this many seconds (0 = all in the same instant)",
    )
    parser.add_argument("--switch-repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (the target is for 1)")
    parser.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="WebSocket per-message-deflate (uvicorn's default is on; it costs CPU per event)",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the same streams as bare litellm calls in one process (the control)",
    )
    args = parser.parse_args()

    prepare_database()
    cookies = make_users(max(args.sizes) + 1)
    fakes = subprocess.Popen(
        [sys.executable, "-c", FAKES, str(args.chunks), str(args.chunk_delay)],
        env=ENV,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ollama_url, anthropic_url = fakes.stdout.readline().split()
    server_env = {
        **ENV,
        "LITELLM_ENABLED": "1",
        "OLLAMA_BASE_URL": ollama_url,
        "ANTHROPIC_BASE_URL": anthropic_url,
        "ANTHROPIC_API_KEY": "sk-ant-bench-fake-key",
    }
    base = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/uvicorn"),
            "netbox_chatbox.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
            "--workers",
            str(args.workers),
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
            "--ws-per-message-deflate",
            str(args.deflate),
        ],
        env=server_env,
        cwd=ROOT,
    )
    try:
        import httpx

        for _ in range(300):
            try:
                httpx.get(f"{base}/login/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        results = asyncio.run(
            bench(
                args,
                cookies,
                base.replace("http", "ws") + "/plugins/chatbox/ws/",
                base,
                server.pid,
                ollama_url,
                fakes.pid,
            )
        )
        results["settings"] = {
            "chunks": args.chunks,
            "chunk_delay_s": args.chunk_delay,
            "workers": args.workers,
            "ws_per_message_deflate": args.deflate,
            "cpus": os.cpu_count(),
        }
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        server.terminate()
        server.wait(30)
        fakes.stdin.close()
        fakes.wait(10)


if __name__ == "__main__":
    main()
