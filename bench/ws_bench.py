"""Concurrent WebSocket chats, NetBox's pages beside them, and scale-out over workers (issues 5 and 17).

Starts, in separate processes: the fake providers (tests/fakes; each answer is ``--chunks`` tokens,
``--chunk-delay`` seconds apart, like a model generating) and, per layout in ``--layouts``:

- ``one``: ``uvicorn netbox_chatbox.asgi:application`` (``--workers``, default 1) serves pages and chats;
- ``split``: the same uvicorn serves the chats, and NetBox's ``gunicorn netbox.wsgi`` (``--gunicorn-workers``
  workers × ``--gunicorn-threads`` threads) the pages, as docs/deployment.md's layout 2 (without nginx).

on a bench database. For each layout: the first answer after the server started (``--cold-wait`` s after
it answers) next to a warm one; then, for each N in ``--sizes`` and each ramp in ``--ramps``: N users, each
logged in with a real NetBox session, open N sockets and send one question each, spread over ``ramp``
seconds (0: all in the same instant, the worst case). Measured:

- time to first token (TTFT: question sent → first ``delta``), p50 / p99
- inter-token gap (between consecutive ``delta`` events of one answer), p50 / p99
- errors (error events, missing ``complete``, socket failures)
- server CPU per answer, server RSS (the server and its children) before the round and at its peak
- the share of CPU the harness (fakes + clients, on the same machine) used during the round
- NetBox pages fetched every 0.2 s during the round, by a logged-in superuser: an object list
  (``/dcim/devices/``, the main figure) and ``/api/status/``: p50 / p99 latency
- the control: the same N streams as bare ``litellm.acompletion`` calls in one process, same fake,
  so "server − control" is what NetBox, the socket, the sessions and storage add
- model switch per path: ``model_change`` sent → ``model_changed`` received, and on to the first token
  of the next answer (which starts the new agent: for Claude a CLI process)

Then throughput: ``--throughput-streams`` answers from a fake that streams without pauses, on 1 and on 2
uvicorn workers (``--throughput-workers``): answers per second and server CPU per answer.

Targets (issue 17, ratios against the control in the same run): p99 TTFT at 50 and 200 streams ≤ 1.0× the
control with zero errors; server CPU ≤ 15 ms per 60-token answer; the object list's p99 ≤ 300 ms during
200 chats in the recommended layout; the first answer after a start within 1 s of a warm one; throughput
growing with workers; model switch < 2 s.

    .venv/bin/python bench/ws_bench.py [--sizes 50 200] [--ramps 0] [--layouts one split] [--chunks 60]
                                       [--chunk-delay 0.1] [--workers 1] [--json artifacts/bench/ws_bench.json]

The machine's load (``/proc/loadavg`` before and after, CPU count) is in the JSON: on a shared machine,
compare ratios against the control of the same run, and CPU per answer, rather than absolute times.

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
from pathlib import Path

from ws_harness import Chat, Servers, loadavg, pct, round_

ROOT = Path(__file__).resolve().parents[1]
DB = os.environ.get("CHATBOX_BENCH_DB", "chatbox_bench")
REDIS_DB = os.environ.get("CHATBOX_BENCH_REDIS_DB", "14")
# The dev configuration with NetBox's documented CONN_MAX_AGE (configuration_example.py: 300 s); the dev
# value 0 opens a new PostgreSQL connection for every query batch.
CONFIG_DIR = Path(tempfile.mkdtemp(prefix="chatbox-bench-"))
(CONFIG_DIR / "bench_configuration.py").write_text(
    "from configuration import *  # noqa: F401,F403\nDATABASES['default']['CONN_MAX_AGE'] = 300\n"
    # On a loaded machine the fakes' health endpoints can take over 2 s: a failed check would reroute chats.
    "PLUGINS_CONFIG['netbox_chatbox']['health_check_timeout'] = 15\n"
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
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_superuser": True})
    client = Client()
    client.force_login(admin)
    return cookies, f"sessionid={client.cookies['sessionid'].value}"


async def switches(server, cookie, repeats):
    """model_change times per direction, and model_change → first token of the next answer."""
    chat = Chat(server.ws_url, cookie, server.chat_base)
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


async def first_answers(server, cookies, wait):
    """TTFT of the first answer of a freshly started server (``wait`` s after it answered), then of a warm one."""
    await asyncio.sleep(wait)
    ttfts = []
    for cookie in cookies:  # a new user and socket each: only the process is warm the second time
        chat = Chat(server.ws_url, cookie, server.chat_base)
        await chat.open()
        first, _, final = await chat.ask("first question")
        assert final["type"] == "complete", final
        ttfts.append(first)
        await chat.close()
    cold, warm = ttfts
    return {"asked_after_s": wait, "cold_ttft_ms": round(cold * 1000, 1), "warm_ttft_ms": round(warm * 1000, 1)}


async def warm_workers(server, cookies, workers):
    """Path B's first turn on each worker (the kernel spreads connections over the workers)."""
    warm = [Chat(server.ws_url, cookie, server.chat_base) for cookie in cookies[: 4 * workers]]
    await asyncio.gather(*(chat.open() for chat in warm))
    await asyncio.gather(*(chat.ask("warm up") for chat in warm))
    await asyncio.gather(*(chat.close() for chat in warm))


async def layout_bench(args, cookies, server, ollama_url, fakes_pid):
    result = {"first_answer": await first_answers(server, cookies[-3:-1], args.cold_wait)}
    print(json.dumps(result), flush=True)
    await warm_workers(server, cookies, args.workers)
    rounds = []
    for i, n in enumerate(args.sizes):
        for ramp in args.ramps:
            measured = await round_(n, cookies, server, f"{i}/{ramp}", ramp, fakes_pid)
            if args.baseline:
                control = await asyncio.to_thread(baseline, ollama_url, n, ramp)
                measured["control_litellm_only"] = control
                measured["ttft_p99_vs_control"] = round(measured["ttft_p99_ms"] / control["ttft_p99_ms"], 2)
            rounds.append(measured)
            print(json.dumps(measured), flush=True)
    result["rounds"] = rounds
    if args.switch_repeats:
        result["model_switch_ms"] = await switches(server, cookies[-1], args.switch_repeats)
    return result


async def throughput(args, cookies, server, workers, fakes_pid):
    """``n`` answers at once from a fake without pauses: answers per second and CPU per answer."""
    await warm_workers(server, cookies, workers)
    n = args.throughput_streams
    measured = await round_(n, cookies, server, f"throughput/{workers}", 0.0, fakes_pid)
    return {
        "workers": workers,
        "streams": n,
        "errors": measured["errors"],
        "answers_per_s": round(n / measured["wall_s"], 1),
        "server_cpu_ms_per_turn": measured["server_cpu_ms_per_turn"],
    }


def start_fakes(chunks, delay):
    fakes = subprocess.Popen(
        [sys.executable, "-c", FAKES, str(chunks), str(delay)],
        env=ENV,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ollama_url, anthropic_url = fakes.stdout.readline().split()
    env = {
        **ENV,
        "LITELLM_ENABLED": "1",
        "OLLAMA_BASE_URL": ollama_url,
        "ANTHROPIC_BASE_URL": anthropic_url,
        "ANTHROPIC_API_KEY": "sk-ant-bench-fake-key",
    }
    return fakes, ollama_url, env


def summary(results):
    """The issue's figures, from the rounds at ramp 0."""
    figures = {}
    for layout, result in results["layouts"].items():
        for measured in result["rounds"]:
            if measured["ramp_s"] == 0:
                n = measured["streams"]
                figures[f"{layout}/ttft_p99_vs_control@{n}"] = measured.get("ttft_p99_vs_control")
                figures[f"{layout}/server_cpu_ms_per_turn@{n}"] = measured["server_cpu_ms_per_turn"]
                figures[f"{layout}/object_list_p99_ms@{n}"] = measured["object_list_p99_ms"]
                figures[f"{layout}/errors@{n}"] = measured["errors"]
                if "control_litellm_only" in measured:
                    figures[f"control/cpu_ms_per_turn@{n}"] = measured["control_litellm_only"]["cpu_ms_per_turn"]
        first = result["first_answer"]
        figures[f"{layout}/first_answer_minus_warm_ms"] = round(first["cold_ttft_ms"] - first["warm_ttft_ms"], 1)
    for measured in results.get("throughput", []):
        figures[f"throughput/answers_per_s@{measured['workers']}_workers"] = measured["answers_per_s"]
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
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
        default=[0.0],
        help="spread the N questions over this many seconds (0 = all in the same instant)",
    )
    parser.add_argument("--layouts", nargs="+", choices=["one", "split"], default=["one", "split"])
    parser.add_argument("--switch-repeats", type=int, default=2, help="0: skip the model switch figures")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (the targets are for 1)")
    parser.add_argument("--gunicorn-workers", type=int, default=1, help="the split layout's gunicorn (pages)")
    parser.add_argument("--gunicorn-threads", type=int, default=3)
    parser.add_argument("--cold-wait", type=float, default=10.0, help="seconds after start before the first answer")
    parser.add_argument("--throughput-streams", type=int, default=200, help="0: skip the throughput rounds")
    parser.add_argument("--throughput-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="WebSocket per-message-deflate (uvicorn's default is on; it costs CPU per event)",
    )
    parser.add_argument("--port", type=int, default=8765, help="uvicorn's port (the split layout's gunicorn: +1)")
    parser.add_argument("--json", default="artifacts/bench/ws_bench.json", help="where the results are written")
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the same streams as bare litellm calls in one process (the control)",
    )
    args = parser.parse_args()

    prepare_database()
    cookies, admin_cookie = make_users(max([*args.sizes, args.throughput_streams, 8]) + 3)
    results = {
        "settings": {
            "chunks": args.chunks,
            "chunk_delay_s": args.chunk_delay,
            "workers": args.workers,
            "gunicorn": f"{args.gunicorn_workers}x{args.gunicorn_threads}",
            "ws_per_message_deflate": args.deflate,
            "cpus": os.cpu_count(),
            "loadavg_before": loadavg(),
        },
        "layouts": {},
    }
    fakes, ollama_url, env = start_fakes(args.chunks, args.chunk_delay)
    try:
        for layout in args.layouts:
            server = Servers(args, layout, args.workers, env, admin_cookie)
            try:
                results["layouts"][layout] = asyncio.run(layout_bench(args, cookies, server, ollama_url, fakes.pid))
            finally:
                server.stop()
    finally:
        fakes.stdin.close()
        fakes.wait(10)
    if args.throughput_streams:
        fast, _, fast_env = start_fakes(args.chunks, 0.0)
        try:
            results["throughput"] = []
            for workers in args.throughput_workers:
                server = Servers(args, "one", workers, fast_env, admin_cookie)
                try:
                    measured = asyncio.run(throughput(args, cookies, server, workers, fast.pid))
                finally:
                    server.stop()
                results["throughput"].append(measured)
                print(json.dumps(measured), flush=True)
        finally:
            fast.stdin.close()
            fast.wait(10)
    results["settings"]["loadavg_after"] = loadavg()
    results["summary"] = summary(results)
    print(json.dumps(results["summary"], indent=1), flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
