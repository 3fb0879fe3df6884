"""Make outside traffic impossible, and show any attempt.

:class:`OutsideTrafficTrap` is a local HTTP proxy that refuses everything and records what was
asked (``CONNECT api.anthropic.com:443``). :meth:`install` points ``HTTP(S)_PROXY``/``ALL_PROXY``
of this process (and so of every child: the Claude CLI, the LiteLLM proxy) at it, with
``NO_PROXY`` for 127.0.0.1/localhost where the fakes live. Proxy-aware clients (httpx, aiohttp with
trust_env, the CLI) then cannot reach the internet, and each attempt is in :attr:`attempts`.
"""

import contextlib
import os
import socket
import threading

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
LOCAL = "127.0.0.1,localhost,::1"


class OutsideTrafficTrap:
    def __init__(self):
        self.attempts: list[str] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._saved = None
        threading.Thread(target=self._serve, name="OutsideTrafficTrap", daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _serve(self):
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            with client:
                client.settimeout(2)
                try:
                    first_line = client.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
                except OSError:
                    first_line = "(no request line)"
                self.attempts.append(first_line)
                with contextlib.suppress(OSError):
                    client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def install(self, environ=os.environ):
        """Route ``environ``'s outside traffic here (local addresses excepted)."""
        self._saved = {k: environ.get(k) for k in (*PROXY_VARS, "NO_PROXY", "no_proxy")}
        for name in PROXY_VARS:
            environ[name] = self.url
        environ["NO_PROXY"] = environ["no_proxy"] = LOCAL
        return self

    def uninstall(self, environ=os.environ):
        for name, value in (self._saved or {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value

    def close(self):
        self._sock.close()
