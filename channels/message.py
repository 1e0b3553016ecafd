"""The message a consumer receives."""

from __future__ import annotations

import copy
from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Any

from .channel import Channel


class Message:
    """A message taken off a channel, with dict-style access to its content.

    ``message.reply_channel`` is a :class:`~channels.Channel` for the
    connection that sent it (or ``None``), so a consumer answers with
    ``message.reply_channel.send({...})``.
    """

    def __init__(self, content: dict[str, Any], channel_name: str, channel_layer: Any) -> None:
        self.content = content
        self.channel_layer = channel_layer
        self.channel = Channel(channel_name, channel_layer=channel_layer)
        reply = content.get("reply_channel")
        self.reply_channel = Channel(reply, channel_layer=channel_layer) if reply else None
        # Filled in by the session and auth decorators.
        self.channel_session: Any = None
        self.http_session: Any = None
        self.user: Any = None

    def __repr__(self) -> str:
        return f"<Message channel={self.channel.name!r}>"

    def __getitem__(self, key: str) -> Any:
        return self.content[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.content[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.content

    def __iter__(self) -> Iterator[str]:
        return iter(self.content)

    def keys(self) -> KeysView[str]:
        return self.content.keys()

    def values(self) -> ValuesView[Any]:
        return self.content.values()

    def items(self) -> ItemsView[str, Any]:
        return self.content.items()

    def get(self, key: str, default: Any = None) -> Any:
        return self.content.get(key, default)

    def copy(self) -> Message:
        """Return a message with a deep copy of this one's content."""
        return type(self)(copy.deepcopy(self.content), self.channel.name, self.channel_layer)
