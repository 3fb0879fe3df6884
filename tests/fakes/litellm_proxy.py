"""A real LiteLLM proxy process, configured like ``config/litellm_config.yaml``, in front of a fake Ollama.

    proxy = LiteLLMProxy(ollama_url=fake_ollama.url).start()   # 10–15 s
    proxy.url, proxy.master_key, proxy.model_name
    proxy.stop()

The proxy runs from its own virtualenv (``.venv-litellm``; ``LITELLM_PROXY_BIN`` overrides) with
the repository's config file, copied with only ``api_base`` pointed at the fake Ollama. With
``openai_models`` ({model_name: litellm_params}) it also serves models of an OpenAI-compatible server.
"""

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "litellm_config.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiteLLMProxy:
    def __init__(
        self, ollama_url: str, master_key: str | None = None, port: int | None = None, openai_models: dict | None = None
    ):
        self.ollama_url = ollama_url
        self.master_key = master_key or f"sk-test-{secrets.token_hex(16)}"
        self.port = port or free_port()
        self.process = None
        self._dir = None
        config = yaml.safe_load(CONFIG.read_text())
        self.model_name = config["model_list"][0]["model_name"]
        for model in config["model_list"]:
            model["litellm_params"]["api_base"] = ollama_url
        config["model_list"] += [
            {"model_name": name, "litellm_params": params} for name, params in (openai_models or {}).items()
        ]
        self._config = config

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60):
        binary = os.environ.get("LITELLM_PROXY_BIN") or str(ROOT / ".venv-litellm" / "bin" / "litellm")
        self._dir = tempfile.TemporaryDirectory(prefix="litellm-proxy-")
        config_path = Path(self._dir.name) / "litellm_config.yaml"
        config_path.write_text(yaml.safe_dump(self._config))
        self.log_path = Path(self._dir.name) / "proxy.log"
        env = {**os.environ, "LITELLM_MASTER_KEY": self.master_key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        command = [binary, "--config", str(config_path), "--host", "127.0.0.1", "--port", str(self.port)]
        if setpriv := shutil.which("setpriv"):  # the proxy dies with us, even if we are killed (no 350 MB orphans)
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=self._dir.name,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the LiteLLM proxy exited ({self.process.returncode}):\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health/liveliness", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the LiteLLM proxy did not start within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self._dir else ""

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._dir:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
