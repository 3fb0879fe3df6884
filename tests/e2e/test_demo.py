"""Issue 10: the README's first command, as a new user runs it: `bash scripts/demo.sh`, then Chromium.

The script, its configuration (devconf/), its collectstatic, migrations, admin user and uvicorn are the
real ones; only CHATBOX_DEMO_DATA=sample swaps NetBox's demo data (minutes of migrations) for the schema
snapshot and a small sample, in a database of its own. Stopped as a user does: Ctrl-C (SIGINT to the
script's process group).
"""

import os
import signal
import subprocess
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS, CHAT_PATH, ROOT, free_port, wait_answered

pytestmark = pytest.mark.xdist_group("browser-own-server")

DEMO = ROOT / "scripts" / "demo.sh"
# The test run's own settings and providers stay out: the demo configures itself.
UNSET = (
    "DJANGO_SETTINGS_MODULE",
    "NETBOX_CONFIGURATION",
    "NETBOX_DEBUG",
    "PYTHONPATH",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "LITELLM_ENABLED",
    "LITELLM_PROXY_URL",
    "LITELLM_MASTER_KEY",
    "OLLAMA_BASE_URL",
)


def _psql(sql):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


@pytest.fixture(scope="module")
def demo_env():
    from django.conf import settings

    # A database of its own, named after this run's test database (and pytest-xdist worker).
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    database = f"{settings.DATABASES['default']['TEST']['NAME']}_demo{'_' + worker if worker else ''}"
    _psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    yield {**env, "NETBOX_DB": database, "CHATBOX_DEMO_DATA": "sample"}
    _psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture(scope="module")
def first_run(demo_env):
    """`demo.sh --no-serve` on a machine that has never run it: restores, migrates, creates admin/admin."""
    result = subprocess.run(
        ["bash", str(DEMO), "--no-serve"], env=demo_env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture
def demo(demo_env, first_run):
    """demo(*options) → (url, output so far): `bash scripts/demo.sh --port P …`, serving; Ctrl-C afterwards."""
    running = []

    def start(*options):
        port = free_port()
        log = ARTIFACTS / f"e2e-demo-{port}.log"
        ARTIFACTS.mkdir(exist_ok=True)
        out = open(log, "w")  # noqa: SIM115 - the demo's output for its lifetime; closed when it is stopped
        process = subprocess.Popen(
            ["bash", str(DEMO), "--port", str(port), *options],
            env=demo_env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running.append((process, out))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/login/", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        return url, log.read_text()

    yield start
    for process, out in running:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            out.close()
        assert process.returncode is not None


class NetworkLog:
    """Every response the page got, to check that nothing was missing."""

    def __init__(self, page):
        self.responses = []
        page.on("response", lambda response: self.responses.append((response.status, response.url)))

    def assert_clean(self):
        assert self.responses, "the page loaded nothing"
        assert not [url for _, url in self.responses if "/media-failure/" in url], self.responses
        assert not [(status, url) for status, url in self.responses if status == 404]
        statics = [url for status, url in self.responses if "/static/" in url and status in (200, 304)]
        assert any("/static/setmode.js" in url for url in statics) and any(
            "/netbox_chatbox/page.js" in url for url in statics
        )


def open_chat_as_admin(browser, url):
    context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    network = NetworkLog(page)
    page.goto("/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    # "Chat" in NetBox's navigation menu.
    page.locator('#sidebar-menu button.dropdown-toggle[aria-label="Chat"]').click()
    page.locator(f'#sidebar-menu a[href="{CHAT_PATH}"]').click()
    page.wait_for_url(f"**{CHAT_PATH}")
    return context, page, network, errors


def test_first_run_sets_everything_up(first_run):
    assert "Collecting static files" in first_run or (ROOT / ".netbox" / "static" / "setmode.js").is_file()
    assert "Applying migrations" in first_run and "login admin / admin" in first_run


def test_without_providers_the_demo_serves_netbox_and_says_what_to_set(demo, browser):
    url, output = demo()
    # A second run: nothing is migrated again; it says where, who and how to stop.
    assert "migrated and set up already" in output and "Applying migrations" not in output
    assert f"{url}/plugins/chatbox/" in output and "admin / admin" in output and "Ctrl-C" in output
    assert "Model providers: none" in output and "--fake-providers" in output

    context, page, network, errors = open_chat_as_admin(browser, url)
    notice = page.locator("#chatbox-unconfigured")
    expect(notice).to_contain_text("No model provider is configured")
    expect(notice).to_contain_text('"anthropic_api_key"')
    expect(notice).to_contain_text("ANTHROPIC_API_KEY")
    expect(notice).to_contain_text('"litellm_enabled": True')
    expect(page.locator("#chatbox-input")).to_be_disabled()
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "screenshots" / "demo-no-provider.png")
    network.assert_clean()
    assert not errors
    context.close()


def test_with_fake_providers_a_question_streams_an_answer(demo, browser):
    url, output = demo("--fake-providers")
    assert "migrated and set up already" in output and "Model providers: the scripted fake providers" in output

    context, page, network, errors = open_chat_as_admin(browser, url)
    expect(page.locator("#chatbox-connection")).to_have_attribute("data-status", "live")
    expect(page.locator("#chatbox-unconfigured")).to_have_count(0)
    page.fill("#chatbox-input", "Where is core-sw1.ams1?")
    page.press("#chatbox-input", "Enter")
    answer = page.locator("#chatbox-messages .chatbox-msg-assistant").last
    expect(answer).to_contain_text("(fake model)", timeout=90_000)
    wait_answered(page)
    expect(answer).to_contain_text("core-sw1.ams1")
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "screenshots" / "demo-fake-answer.png")
    network.assert_clean()
    assert not errors
    context.close()
