"""Issue 19: faults never corrupt an answer, strand a user or leak capacity.

Real claude-agent-sdk + its CLI and real litellm against the fake providers, which inject each fault at
the HTTP edge. One test per defect of the issue (numbered as there).
"""
import glob
import os
import tempfile

import pytest

from netbox_chatbox.models import Message

from .test_sessions import cli_processes
from .test_transport_http import CHAT_URL, SSE, parse_sse

STATUS_URL = "/api/plugins/chatbox/status/"

pytestmark = pytest.mark.django_db(transaction=True)


def temp_homes() -> set[str]:
    """The Claude CLI's private HOME folders that exist now."""
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "netbox-chatbox-claude-*")))


def read_until_complete(response) -> list[dict]:
    """An SSE client that reads up to the ``complete`` (or ``error``) line, then hangs up at once."""
    events = []
    for chunk in response.streaming_content:
        events += parse_sse(chunk.decode())
        if events[-1]["type"] in ("complete", "error"):
            break
    response.close()  # what the WSGI server does when the client disconnects
    return events


# -- 1: an SSE client closing right after `complete` ---------------------------------------------------------

def status(api, superuser) -> dict:
    """What an admin sees: GET /api/plugins/chatbox/status/."""
    response = api(superuser, token=True).get(STATUS_URL)
    assert response.status_code == 200
    return response.json()


def test_sse_client_hanging_up_after_complete_frees_the_claude_slot(api, chat_user, superuser, use_fake_anthropic,
                                                                    chatbox_config):
    chatbox_config(max_active_sessions=2)
    before_cli, before_homes = cli_processes(), temp_homes()
    client = api(chat_user, token=True)
    for i in range(3):  # one more than the slots: a leak shows as "busy"
        use_fake_anthropic.reply(f"Answer {i}.")
        response = client.post(CHAT_URL, {"message": f"q{i}", "model": "claude-haiku-4-5"}, format="json", **SSE)
        events = read_until_complete(response)
        assert events[-1]["type"] == "complete", events
        assert status(api, superuser)["cli_slots_in_use"] == 0
    assert cli_processes() - before_cli == set(), "no CLI process may outlive its request"
    assert temp_homes() - before_homes == set(), "no CLI home folder may outlive its request"
    assert status(api, superuser) == {"pid": os.getpid(), "cli_slots_in_use": 0, "cli_slots_max": 2,
                                      "cli_processes": 0, "temp_homes": 0}
    assert Message.objects.filter(role="assistant").count() == 3


def test_status_is_for_superusers_only(api, chat_user, superuser, use_fake_anthropic):
    assert api(chat_user, token=True).get(STATUS_URL).status_code == 403
    assert api().get(STATUS_URL).status_code == 403
    use_fake_anthropic.reply("Hi.")
    from asgiref.sync import async_to_sync, sync_to_async

    from netbox_chatbox.sessions import ChatSession

    async def hold_then_close():  # a socket-style session keeps its CLI between turns
        session = ChatSession.for_request(chat_user, "claude-haiku-4-5")
        events = [e async for e in session.stream("hi")]
        held = await sync_to_async(status)(api, superuser)
        await session.close()
        return events, held, await sync_to_async(status)(api, superuser)

    events, held, freed = async_to_sync(hold_then_close)()
    assert events[-1]["type"] == "complete"
    assert (held["cli_slots_in_use"], held["cli_processes"], held["temp_homes"]) == (1, 1, 1)
    assert (freed["cli_slots_in_use"], freed["cli_processes"], freed["temp_homes"]) == (0, 0, 0)
