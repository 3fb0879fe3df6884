"""Browser tests: a real NetBox + plugin in a server process, driven by Debian's headless Chromium.

The server is a subprocess (uvicorn with the plugin's ASGI app, or gunicorn for a WSGI-only NetBox)
on the test database, with the fake model providers of tests/fakes. It reads what is committed, so
the users and NetBox objects below are created outside any test transaction, once per test module,
and deleted again when the module ends (other test modules expect an empty database).
"""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.ollama import FakeOllama
from tests.servers import free_port, stop_group, uvicorn_command

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "e2e-Pass-123!"
USERS = ("e2e-alice", "e2e-bob", "e2e-admin")
CHAT_PATH = "/plugins/chatbox/"
EVIL_NAME = 'e2e-<img src=x onerror="window.xssHit=9">'

expect.set_options(timeout=30_000)  # generous: the 2-core machine is shared with other test runs


# --- committed data ----------------------------------------------------------------------------


def _delete_e2e_data():
    from dcim.models import Device, DeviceRole, DeviceType, Manufacturer, Site
    from django.contrib.auth import get_user_model
    from users.models import ObjectPermission

    ObjectPermission.objects.filter(name__startswith="e2e-").delete()
    get_user_model().objects.filter(username__in=USERS).delete()  # cascades: conversations, preferences
    Device.objects.filter(site__slug__startswith="e2e-").delete()
    DeviceType.objects.filter(slug="e2e-model").delete()
    DeviceRole.objects.filter(slug="e2e-role").delete()
    Manufacturer.objects.filter(slug="e2e-maker").delete()
    Site.objects.filter(slug__startswith="e2e-").delete()


@pytest.fixture(scope="module")
def e2e_data(django_db_setup, django_db_blocker):
    """e2e-alice may chat and view DCIM; e2e-bob may only view DCIM; e2e-admin is a superuser."""
    from dcim.models import Device, DeviceRole, DeviceType, Manufacturer, Site
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from netbox_chatbox.models import Conversation
    from tests.conftest import grant

    with django_db_blocker.unblock():
        _delete_e2e_data()  # a previous run that died half-way
        User = get_user_model()
        # Hashed as the server process (NetBox's default hashers) checks it; the tests' settings use MD5.
        password = make_password(PASSWORD, hasher="pbkdf2_sha256")
        alice = User.objects.create(username="e2e-alice", password=password)
        bob = User.objects.create(username="e2e-bob", password=password)
        admin = User.objects.create(username="e2e-admin", password=password, is_superuser=True)
        grant(alice, Conversation, ["chat"], name="e2e-alice-chat")
        for user in (alice, bob):
            grant(user, Device, ["view"], name=f"e2e-{user.username}-device")
            grant(user, Site, ["view"], name=f"e2e-{user.username}-site")
        site = Site.objects.create(name="e2e-DC1", slug="e2e-dc1")
        device_type = DeviceType.objects.create(
            manufacturer=Manufacturer.objects.create(name="e2e-maker", slug="e2e-maker"), model="E2E", slug="e2e-model"
        )
        role = DeviceRole.objects.create(name="e2e-role", slug="e2e-role")
        devices = [
            Device.objects.create(name=name, site=site, device_type=device_type, role=role)
            for name in ("e2e-core-1", "e2e-core-2")
        ]
        # NetBox data is untrusted input too: a device named like an XSS payload, at its own site.
        evil = Device.objects.create(
            name=EVIL_NAME,
            site=Site.objects.create(name="e2e-Evil", slug="e2e-evil"),
            device_type=device_type,
            role=role,
        )
    yield {"alice": alice, "bob": bob, "admin": admin, "site": site, "devices": devices, "evil": evil}
    with django_db_blocker.unblock():
        _delete_e2e_data()


@pytest.fixture
def db_access(django_db_blocker):
    """Read what the server process committed (and clean up after a test)."""
    with django_db_blocker.unblock():
        yield


# --- fake providers and the server -------------------------------------------------------------


# One pair of fakes per worker, and one server (asgi_server) for the browser modules that share it: xdist group
# "browser" keeps them on one worker, while the other runs group "browser-own-server" (the modules that start a
# server of their own: changes enabled, gunicorn, the demo). Each test resets the fakes (fresh_fakes) and each
# module brings its own data (e2e_data) into its worker's database.
@pytest.fixture(scope="session")
def fake_anthropic():
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_ollama():
    with FakeOllama() as fake:
        yield fake


def _server_env(fake_anthropic, fake_ollama) -> dict:
    from django.db import connection

    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'devconf'}",
        "DJANGO_SETTINGS_MODULE": "netbox.settings",
        "NETBOX_CONFIGURATION": "tests.e2e.configuration",
        "NETBOX_DB": connection.settings_dict["NAME"],  # the test database
        "NETBOX_DEBUG": "0",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "ANTHROPIC_API_KEY": "sk-ant-e2e-fake",
        "ANTHROPIC_BASE_URL": fake_anthropic.url,
        "LITELLM_ENABLED": "1",
        "LITELLM_PROXY_URL": "",  # path B straight to the fake Ollama
        "OLLAMA_BASE_URL": fake_ollama.url,
    }


def start_server(command: list, env: dict, name: str, port: int | None = None):
    """Start a NetBox server process and wait until it serves the login page."""
    port = port or free_port()
    # Per worker: both pytest-xdist workers run browser groups, each with its own servers.
    name = "-".join(filter(None, (name, os.environ.get("PYTEST_XDIST_WORKER"))))
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"e2e-{name}.log", "w")  # noqa: SIM115 - the server's log for its lifetime; stop_server closes it
    process = subprocess.Popen(
        [arg.format(port=port) for arg in command],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/login/", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process)
            log.close()
            raise RuntimeError(f"{name} did not start:\n{(ARTIFACTS / f'e2e-{name}.log').read_text()[-3000:]}")
        time.sleep(0.3)
    return process, url, log


def stop_server(process, log):
    stop_group(process)
    log.close()


# The plugin's own ASGI application, static files included (collected by scripts/test.sh), as deployed.
UVICORN = uvicorn_command("{port}", "--log-level", "warning")


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, fake_anthropic, fake_ollama):
    """NetBox + the plugin under uvicorn: pages, API and the chat WebSocket in one process (started once:
    the modules that use it have the same configuration; the data each module commits is read live)."""
    process, url, log = start_server(UVICORN, _server_env(fake_anthropic, fake_ollama), "uvicorn")
    yield url
    stop_server(process, log)


@pytest.fixture
def restartable_server(e2e_data, fake_anthropic, fake_ollama):
    """A uvicorn server of the test's own that it can stop and start again on the same port."""
    env = _server_env(fake_anthropic, fake_ollama)
    running = {}

    class Server:
        def start(self, port=None):
            running["process"], self.url, running["log"] = start_server(UVICORN, env, "uvicorn-restart", port)
            return self

        def stop(self):
            stop_server(running.pop("process"), running.pop("log"))

    server = Server().start()
    yield server
    if running:
        server.stop()


@pytest.fixture(scope="module")
def wsgi_server(e2e_data, fake_anthropic, fake_ollama):
    """NetBox + the plugin under gunicorn, as NetBox ships it: no WebSocket anywhere."""
    process, url, log = start_server(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "tests.e2e.wsgi:application",
            "--bind",
            "127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--timeout",
            "120",
        ],
        _server_env(fake_anthropic, fake_ollama),
        "gunicorn",
    )
    yield url
    stop_server(process, log)


@pytest.fixture(autouse=True)
def fresh_fakes(request):
    """Each test scripts its own replies."""
    for name in ("fake_anthropic", "fake_ollama"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()
    yield


@pytest.fixture(autouse=True)
def fresh_chat_state(request, django_db_blocker):
    """Each test starts without conversations and on the default model."""
    yield
    if "e2e_data" not in request.fixturenames:
        return
    from django.contrib.auth import get_user_model
    from django.db import IntegrityError

    from netbox_chatbox.models import Conversation
    from netbox_chatbox.preferences import PREFERENCE_PATH

    with django_db_blocker.unblock():
        for _attempt in range(10):  # the server may still be storing the end of a closed page's turn
            try:
                Conversation.objects.filter(owner__username__in=USERS).delete()
                break
            except IntegrityError:
                time.sleep(0.5)
        for user in get_user_model().objects.filter(username__in=USERS):
            user.config.clear(PREFERENCE_PATH, commit=True)


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread, and Django then refuses ORM calls
    # ("async context"). The tests' own ORM calls (checking what the server stored) are sync code
    # all the same, so allow them while the browser runs, as Django documents for such tools.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


class Browsing:
    """A fresh browser context (no cookies) and page, with helpers for NetBox."""

    def __init__(self, browser, base_url, **context_args):
        self.base_url = base_url
        self.context = browser.new_context(
            **{"base_url": base_url, "viewport": {"width": 1400, "height": 900}, **context_args}
        )
        self.page = self.context.new_page()
        self.errors = []  # JavaScript errors on the page: none are expected
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def login(self, username, next_path="/"):
        page = self.page
        page.goto(f"/login/?next={next_path}")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"**{next_path}")
        # NetBox's "Logged in as …" toast would sit on top of the chat input in screenshots.
        page.evaluate("document.querySelectorAll('.toast').forEach((toast) => toast.remove())")

    def open_chat(self, query=""):
        self.page.goto(CHAT_PATH + query)
        self.wait_connected()

    def wait_connected(self, status="live"):
        expect(self.page.locator("#chatbox-connection")).to_have_attribute("data-status", status)

    def screenshot(self, name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", animations="disabled")  # modals fully shown

    def close(self):
        self.context.close()


@pytest.fixture
def browsing(browser, request):
    """browsing(base_url, **context_args) → Browsing; all closed after the test."""
    opened = []

    def open_(base_url, **context_args):
        opened.append(Browsing(browser, base_url, **context_args))
        return opened[-1]

    yield open_
    for item in opened:
        item.close()
    errors = [e for item in opened for e in item.errors]
    assert not errors, f"JavaScript errors on the page: {errors}"


# --- the chat page -----------------------------------------------------------------------------


@pytest.fixture
def alice_on_qwen(e2e_data, db_access):
    """Alice's stored preference is the local model (path B: no Claude CLI, quick turns)."""
    from netbox_chatbox.preferences import PREFERENCE_PATH

    e2e_data["alice"].config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)


def alices_chat(browsing, server, status="live"):
    """Alice's chat page, connected (``status``: "live" over the socket, "http" without one)."""
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected(status)
    return b.page


def send(page, text):
    page.fill("#chatbox-input", text)
    page.press("#chatbox-input", "Enter")


def wait_answered(page):
    expect(page.locator("#chatbox-send")).to_be_visible()
    expect(page.locator("#chatbox-stop")).to_be_hidden()
