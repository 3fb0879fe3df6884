"""What the tests that start real NetBox servers share: a free port, the plugin's ASGI app under uvicorn, and
stopping a server together with its workers."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def uvicorn_command(port, *options) -> list[str]:
    """uvicorn serving the plugin's ASGI application on 127.0.0.1:``port`` (a number, or "{port}" to fill in)."""
    return [
        sys.executable, "-m", "uvicorn", "netbox_chatbox.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), *options,
    ]  # fmt: skip


def stop_group(process: subprocess.Popen, timeout=20) -> None:
    """Stop a server started with ``start_new_session=True`` and every process it forked.

    Terminating only the parent leaves workers that are still importing NetBox running on (uvicorn's and
    granian's workers, gunicorn's), which a busy 2-core machine then pays for until they finish.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):  # whatever did not stop in time (the group outlives its leader)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def uvicorn_workers(workers: int) -> list[str]:
    """uvicorn's --workers, with a longer health check: with the default 5 s, the supervisor kills and restarts
    workers that a busy machine is still importing NetBox in, over and over, and the server never starts."""
    return ["--workers", str(workers), "--timeout-worker-healthcheck", "60"]


def wait_serving(process: subprocess.Popen, url: str, log_path, timeout=120) -> None:
    """Wait until NetBox answers at ``url`` (its login page); fail with the server's log when the process exits
    or does not answer within ``timeout`` seconds (then it is stopped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, Path(log_path).read_text()
        try:
            httpx.get(f"{url}/login/", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError(f"the server did not start within {timeout} s: {Path(log_path).read_text()}")
