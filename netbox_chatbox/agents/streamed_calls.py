"""Tool calls assembled from a streamed completion's deltas, as the servers behind LiteLLM really send them.

OpenAI streams one call as pieces sharing an ``index``: the name once, the arguments in parts. Others
differ: Ollama sends each call whole, parallel calls in separate chunks, and litellm numbers the calls
per chunk (each is ``index`` 0); llama.cpp's servers repeat the full name in every chunk of a call. So a
piece starts a new call when it carries another id or another name, or brings a new JSON object after
complete arguments; a repeated name is the same call's.
"""

import json


class StreamedCalls:
    def __init__(self):
        self.calls = []  # {"id", "name", "arguments"}, in call order
        self._current = {}  # index → the call its pieces go to

    def add(self, piece):
        """One ``delta.tool_calls`` entry."""
        index = piece.index or 0
        name = piece.function.name or ""
        arguments = piece.function.arguments or ""
        call = self._current.get(index)
        if call is None or self._starts_another(call, piece.id, name, arguments):
            call = {"id": piece.id, "name": name, "arguments": ""}
            self.calls.append(call)
            self._current[index] = call
        call["id"] = call["id"] or piece.id
        call["name"] = call["name"] or name
        call["arguments"] += arguments

    @staticmethod
    def _starts_another(call, id_, name, arguments) -> bool:
        if id_ and call["id"] and id_ != call["id"]:
            return True
        if name and call["name"] and name != call["name"]:
            return True
        return bool(arguments.lstrip().startswith("{") and call["arguments"] and _is_json(call["arguments"]))

    def result(self) -> list[dict]:
        """The calls with parsed arguments (None when they are not JSON) and an id for each."""
        result = []
        for number, call in enumerate(self.calls):
            try:
                parsed = json.loads(call["arguments"] or "{}")
            except ValueError:
                parsed = None
            result.append({**call, "id": call["id"] or f"call_{number}", "parsed": parsed})
        return result


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
