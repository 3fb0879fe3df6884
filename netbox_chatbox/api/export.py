"""Take-away: a conversation as Markdown (to read or paste) or JSON (to keep or process)."""

from rest_framework.renderers import BaseRenderer

from .. import catalog


def model_label(model_id: str) -> str:
    """A catalog model's name with its id as detail ("Qwen 2.5 14B Instruct (ollama-qwen2.5)")."""
    entry = catalog.get_catalog().get(model_id)
    return f"{entry.name} ({model_id})" if entry and entry.name != model_id else model_id


def to_markdown(conversation: dict) -> str:
    """The exported conversation (ConversationDetailSerializer's data) as a Markdown document."""
    title = conversation["title"] or f"Conversation {conversation['id']}"
    lines = [
        f"# {title}",
        "",
        f"Conversation {conversation['id']} with {model_label(conversation['model_id'])}, "
        f"started {conversation['created']}{' (archived)' if conversation['archived'] else ''}.",
        "",
    ]
    for message in conversation["messages"]:
        if message["role"] == "user":
            lines += ["## You", "", message["content"], ""]
        elif message["role"] == "error":
            lines += ["## Error", "", message["content"], ""]
        else:
            stopped = " (stopped)" if message["interrupted"] else ""
            lines += [f"## Assistant — {model_label(message['model'])}{stopped}", ""]
            for call in message["tool_calls"] or []:
                lines.append(f"- Tool `{call.get('tool')}`{': ' + call['summary'] if call.get('summary') else ''}")
            if message["tool_calls"]:
                lines.append("")
            lines += [message["content"], ""]
    return "\n".join(lines)


class MarkdownRenderer(BaseRenderer):
    """``?format=md`` (DRF's format override) or ``Accept: text/markdown``."""

    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, dict) or "messages" not in data:  # an error (404, 403): its detail as text
            return str((data or {}).get("detail", "")).encode() if isinstance(data, dict) else b""
        return to_markdown(data).encode()
