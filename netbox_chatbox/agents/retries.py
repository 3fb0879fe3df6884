"""The text of one answer, shown once even when the provider's request is retried mid-stream.

The Claude CLI retries a request whose stream broke (its ``api_retry`` system message says so), streamed
or, at last, not streamed; the retry says the answer again from its start. A message that starts while the
previous one has not ended with a stop reason is such a retry (after a tool call a new message starts only
once the previous one ended with ``tool_use``). Text the client already has is not sent again: the
retry's text is matched against it, and only where the retry says something else is the difference
withdrawn (a :class:`~netbox_chatbox.events.Retract` event) and the new text sent. A deterministic replay
so costs nothing; a different one is corrected; either way the text is there once.
"""

from ..events import Delta, Retract


class RetriedText:
    """Chat events for the text of the API messages of one turn, across retries."""

    def __init__(self):
        self.shown = ""  # the current API message's text, as the client has it
        self._open = False  # a message started and did not end with a stop reason
        self._replay = None  # while a retry repeats ``shown``: how much of it was repeated

    def start(self):
        """An API message starts: a new one, or the retry of the one that broke."""
        if self._open:  # the previous message broke off: this is its retry
            self._replay = 0
        else:
            self.shown, self._replay = "", None
        self._open = True

    def text(self, piece: str):
        """Events for a piece of text: nothing while a retry repeats what was shown."""
        if self._replay is not None:
            expected = self.shown[self._replay : self._replay + len(piece)]
            same = 0
            while same < len(expected) and piece[same] == expected[same]:
                same += 1
            self._replay += same
            piece = piece[same:]
            if not piece:
                return
            yield from self._retract_rest()
        self.shown += piece
        yield Delta(piece)

    def stop(self):
        """The message ended as its protocol ends (with a stop reason)."""
        self._open = False
        if self._replay is not None:
            yield from self._retract_rest()  # the retry said less than the broken attempt

    def _retract_rest(self):
        extra = len(self.shown) - self._replay
        self.shown, self._replay = self.shown[: self._replay], None
        if extra:
            yield Retract(chars=extra)
