"""``JsonCodecMixin``: the JSON of the JSON WebSocket consumers, sync and async alike."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.core.serializers.json import DjangoJSONEncoder

from ..message import Message

__all__ = ["JsonCodecMixin"]


class JsonCodecMixin:
    """JSON in text frames; override the two classmethods to change the encoding."""

    #: What a client gets back for a frame it cannot use.
    error_key: ClassVar[str] = "error"

    @classmethod
    def decode_json(cls, text: str) -> Any:
        """Return the value of a text frame; raise ``ValueError`` if it is not JSON."""
        return json.loads(text)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        """Return the text of a frame holding *content*."""
        return json.dumps(content, cls=DjangoJSONEncoder)

    def decode_frame(self, message: Message) -> tuple[bool, Any]:
        """Return (True, value) for a JSON text frame, else (False, what is wrong with it)."""
        text = message.get("text")
        if text is None:
            return False, "Binary frames are not accepted: send JSON in text frames"
        try:
            return True, self.decode_json(text)
        except ValueError as exc:
            return False, f"Invalid JSON: {exc}"
