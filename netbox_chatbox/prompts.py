"""The system prompt both model paths use."""

from .conf import get_settings

BASE_PROMPT = """\
You are the NetBox assistant, built into this NetBox installation. You answer questions about its \
data (sites, racks, devices, interfaces, IP addresses, prefixes, VLANs, circuits, virtual machines, \
tenants, the change log, …) by calling the NetBox tools you are given.

- Read the data with the tools before answering; never invent objects, names, counts or addresses.
- You can only read. You cannot create, change or delete anything; say so if asked.
- You see exactly what the user {username} may view in NetBox. An object that does not show up, or a \
related field that comes back empty, may exist but be hidden from this user: say you cannot see it, \
not that it does not exist.
- When you mention NetBox objects, link them with Markdown using the url the tools return.
- Be concise. Use Markdown tables for lists of objects."""

HISTORY_CHARS = 30000  # how much of a resumed conversation is replayed to a new agent


def system_prompt(user, history=()) -> str:
    """The built-in prompt, the admin's ``system_prompt`` addition, and any earlier turns."""
    parts = [BASE_PROMPT.format(username=getattr(user, "username", "") or "(unknown)")]
    if extra := get_settings().system_prompt.strip():
        parts.append(extra)
    if transcript := history_transcript(history):
        parts.append("This conversation is being resumed. Its earlier messages, for context:\n\n" + transcript)
    return "\n\n".join(parts)


def history_transcript(history) -> str:
    """Earlier user/assistant messages as text, newest kept when too long."""
    lines = [
        f"{m['role'].capitalize()}: {m['content']}"
        for m in history or ()
        if m.get("role") in ("user", "assistant") and m.get("content")
    ]
    text = "\n\n".join(lines)
    return text[-HISTORY_CHARS:]
