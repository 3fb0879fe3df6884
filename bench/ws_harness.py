"""What bench/ws_bench.py measures with: the servers of a layout, a chat client, and CPU/memory from /proc."""

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


class Servers:
    """The servers of one layout; ``chat_*`` is uvicorn, ``page_base`` where the pages are probed."""

    def __init__(self, args, layout, workers, env, admin_cookie):
        self.processes = []
        self.admin_cookie = admin_cookie
        self.chat_base = f"http://127.0.0.1:{args.port}"
        self.ws_url = self.chat_base.replace("http", "ws") + "/plugins/chatbox/ws/"
        uvicorn = [
            str(ROOT / ".venv/bin/uvicorn"), "netbox_chatbox.asgi:application",
            "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(workers),
            "--lifespan", "off", "--no-access-log", "--log-level", "warning",
            "--ws-per-message-deflate", str(args.deflate),
        ]  # fmt: skip
        self.chat_pid = self._start(uvicorn, env, self.chat_base)
        self.page_base, self.page_pid = self.chat_base, None
        if layout == "split":
            self.page_base = f"http://127.0.0.1:{args.port + 1}"
            gunicorn = [
                str(ROOT / ".venv/bin/gunicorn"), "netbox.wsgi:application",
                "--bind", f"127.0.0.1:{args.port + 1}",
                "--workers", str(args.gunicorn_workers), "--threads", str(args.gunicorn_threads),
                "--timeout", "120", "--log-level", "warning",
            ]  # fmt: skip
            self.page_pid = self._start(gunicorn, env, self.page_base)

    def _start(self, command, env, base):
        import httpx

        process = subprocess.Popen(command, env=env, cwd=ROOT)
        self.processes.append(process)
        for _ in range(600):
            try:
                httpx.get(f"{base}/login/", timeout=2)
                return process.pid
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"{command[0]} did not start")

    def pages_cpu(self):
        return cpu_s(self.page_pid) if self.page_pid else 0.0

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(30)


def loadavg():
    return Path("/proc/loadavg").read_text().split()[:3]


async def probe_pages(base, stop, latencies, path, cookie):
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Cookie": cookie}) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = await http.get(path)
                assert response.status_code == 200, (path, response.status_code)
            except httpx.TimeoutException:
                pass  # counted as the 30 s it waited
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)


async def round_(n, cookies, server, round_no, ramp, fakes_pid):
    chats = [Chat(server.ws_url, cookie, server.chat_base) for cookie in cookies[:n]]
    await asyncio.gather(*(c.open() for c in chats))
    rss_before = rss_mb(server.chat_pid)
    peak = [rss_before]
    stop = asyncio.Event()

    async def sample_rss():
        while not stop.is_set():
            peak.append(rss_mb(server.chat_pid))
            await asyncio.sleep(0.1)

    page_list, page_status = [], []
    samplers = [
        asyncio.create_task(sample_rss()),
        asyncio.create_task(probe_pages(server.page_base, stop, page_list, "/dcim/devices/", server.admin_cookie)),
        asyncio.create_task(probe_pages(server.page_base, stop, page_status, "/api/status/", server.admin_cookie)),
    ]

    async def ask(i, chat):
        await asyncio.sleep(ramp * i / n)  # arrivals spread over ``ramp`` seconds (0: all at once)
        return await chat.ask(f"Round {round_no}: how many sites?")

    started, cpu_before, pages_cpu_before = time.perf_counter(), cpu_s(server.chat_pid), server.pages_cpu()
    fakes_before, client_before = cpu_s(fakes_pid), time.process_time()
    results = await asyncio.gather(*(ask(i, c) for i, c in enumerate(chats)), return_exceptions=True)
    wall, cpu = time.perf_counter() - started, cpu_s(server.chat_pid) - cpu_before
    pages_cpu = server.pages_cpu() - pages_cpu_before
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
        # The chat server's CPU (in the one-server layout it also renders the probed pages: see pages_cpu_s).
        "server_cpu_ms_per_turn": round(cpu / n * 1000, 1),
        "pages_server_cpu_s": round(pages_cpu, 2),
        "harness_cpu_share": round(harness_cpu / (harness_cpu + cpu + pages_cpu), 2),  # fakes + clients
        "ttft_p50_ms": round(pct(ttfts, 50) * 1000, 1),
        "ttft_p99_ms": round(pct(ttfts, 99) * 1000, 1),
        "gap_p50_ms": round(pct(gaps, 50) * 1000, 1),
        "gap_p99_ms": round(pct(gaps, 99) * 1000, 1),
        "rss_before_mb": round(rss_before),
        "rss_peak_mb": round(max(peak)),
        "object_list_p50_ms": round(pct(page_list, 50) * 1000, 1),
        "object_list_p99_ms": round(pct(page_list, 99) * 1000, 1),
        "api_status_p50_ms": round(pct(page_status, 50) * 1000, 1),
        "api_status_p99_ms": round(pct(page_status, 99) * 1000, 1),
    }
