"""Turn messages into bytes and back: msgpack, size limits, optional encryption.

Both backends store encoded messages, so the rules are the same everywhere: a
message is a ``dict`` with ``str`` keys whose values are ``None``, ``bool``,
64-bit ``int``, ``float``, ``str``, ``bytes``, lists (tuples become lists) and
dicts of the same. ``bytes`` and ``str`` stay distinct. Encoding on send also
means a message changed after ``send()`` cannot change what is received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any

import msgpack

from ..exceptions import MessageTooLarge

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024

_SCALARS = (str, bytes, int, float, bool, type(None))
_CONTAINERS = {dict, list, tuple}


def _find_unserializable(message: dict[str, Any]) -> tuple[str, str] | None:
    """Return ``(key path, reason)`` for the first value msgpack cannot carry."""
    stack: list[tuple[str, Any]] = [("", message)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"{path}[{key!r}]", f"key {key!r} is not a str"
                stack.append((f"{path}[{key!r}]", item))
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -(2**63) <= value < 2**64:
                return path, f"the int {value} does not fit in 64 bits"
        elif not isinstance(value, _SCALARS):
            return path, f"a {type(value).__name__} cannot be sent"
    return None


def _keys_are_str(value: Any) -> bool:
    """Return True if every dict in *value* has str keys (the one thing msgpack allows)."""
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) in _CONTAINERS and not _keys_are_str(item):
                return False
        return True
    return all(type(item) not in _CONTAINERS or _keys_are_str(item) for item in value)


def _check_keys(message: dict[str, Any]) -> None:
    problem = _find_unserializable(message)
    if problem is not None:
        path, reason = problem
        raise TypeError(
            f"Message value at {path} cannot be sent: {reason}. Messages may only hold "
            "dicts with str keys, lists, str, bytes, int, float, bool and None"
        )


#: Length of :meth:`Encryptor.sign`'s tags: an HMAC-SHA256, base64url without padding.
TAG_LENGTH = 43


class Encryptor:
    """Fernet encryption with key rotation: the first key encrypts, all decrypt.

    It also signs short data (:meth:`sign`, :meth:`verify`) with keys derived
    apart from the encryption keys, for what a ciphertext cannot carry: the
    Redis layer binds each stored entry to its list and local parts that way
    (:class:`channels.layers.redis.entries.EntrySeal`). The first key signs,
    any key verifies, so rotation works the same for both.
    """

    def __init__(self, keys: Sequence[str | bytes], ttl: int | None = None) -> None:
        if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
            raise ValueError(
                "symmetric_encryption_keys must be a list of keys, even if there is only one"
            )
        keys = list(keys)
        if not keys:
            raise ValueError("symmetric_encryption_keys must hold at least one key")
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ValueError(
                "symmetric_encryption_keys needs the 'cryptography' package: "
                "pip install channels-classic[crypto]"
            ) from exc
        fernets = []
        self._mac_keys: list[bytes] = []
        for key in keys:
            if isinstance(key, str):
                key = key.encode("utf-8")
            if not isinstance(key, bytes) or not key:
                raise ValueError("each symmetric encryption key must be a non-empty str or bytes")
            fernets.append(Fernet(base64.urlsafe_b64encode(hashlib.sha256(key).digest())))
            self._mac_keys.append(hashlib.sha256(b"channels.entry-tag\0" + key).digest())
        self._fernet = MultiFernet(fernets)
        self._ttl = ttl

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, data: bytes) -> bytes:
        return self._fernet.decrypt(data, ttl=self._ttl)

    def sign(self, data: bytes) -> bytes:
        """Return the tag of *data* under the first key (:data:`TAG_LENGTH` ASCII bytes)."""
        return self._tag(self._mac_keys[0], data)

    def verify(self, data: bytes, tag: bytes) -> bool:
        """Return whether *tag* is the tag of *data* under any of the keys."""
        return any(hmac.compare_digest(self._tag(key, data), tag) for key in self._mac_keys)

    @staticmethod
    def _tag(key: bytes, data: bytes) -> bytes:
        return base64.urlsafe_b64encode(hmac.digest(key, data, "sha256")).rstrip(b"=")


class MessageCodec:
    """Encode and decode messages for a layer."""

    def __init__(
        self,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        encryptor: Encryptor | None = None,
    ) -> None:
        self.max_message_size = max_message_size
        self.encryptor = encryptor

    def _pack(self, message: dict[str, Any]) -> bytes:
        if not isinstance(message, dict):
            raise TypeError(f"A message must be a dict, not {type(message).__name__}")
        data: bytes | None
        try:
            data = msgpack.packb(message, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            data = None
        # msgpack rejects unknown types itself but accepts any key type: check
        # keys on the fast path, and look for the culprit only when it failed.
        if data is None or not _keys_are_str(message):
            _check_keys(message)
            raise TypeError("Message cannot be sent")  # pragma: no cover - _check_keys raised
        return data

    def encode(self, message: dict[str, Any]) -> bytes:
        """Return *message* as bytes; raise ``TypeError`` or ``MessageTooLarge``."""
        data = self._pack(message)
        if len(data) > self.max_message_size:
            raise MessageTooLarge(
                f"The message is {len(data)} bytes encoded, over the layer's limit of "
                f"{self.max_message_size}: send large payloads in chunks, or raise "
                "max_message_size in the layer's CONFIG"
            )
        if self.encryptor is not None:
            data = self.encryptor.encrypt(data)
        return data

    def decode(self, data: bytes) -> dict[str, Any]:
        """Return the message encoded in *data*; raise ``ValueError`` if it is not one."""
        return self.unpack(self.decrypt(data) if self.encryptor is not None else data)

    def decrypt(self, data: bytes) -> bytes:
        """Return *data* decrypted (as is without encryption); raise ``ValueError`` if it is forged.

        With :meth:`unpack`, the two halves of :meth:`decode`: a message stored
        once for many receivers is decrypted once and unpacked for each, so
        that each gets a copy of its own.
        """
        if self.encryptor is None:
            return data
        try:
            return self.encryptor.decrypt(data)
        except Exception as exc:
            raise ValueError(f"Undecodable message in the channel layer: {exc}") from exc

    def unpack(self, data: bytes) -> dict[str, Any]:
        """Return the message in decrypted *data*; raise ``ValueError`` if it is not one."""
        try:
            message = msgpack.unpackb(data, raw=False)
        except Exception as exc:
            raise ValueError(f"Undecodable message in the channel layer: {exc}") from exc
        if not isinstance(message, dict):
            raise ValueError("Undecodable message in the channel layer: not a dict")
        return message
