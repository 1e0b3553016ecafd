"""Sealed entries: what lets an encrypted Redis layer refuse moved, changed and replayed ones.

Fernet authenticates a message's content, but not where it is stored nor how
often it is taken: someone who can write to Redis could push a captured entry
again (a job runs twice), move it to another channel's list (it decrypts
there too) or rewrite the unencrypted parts of its entry (the local parts
naming a process's sockets, the deadline). So with ``symmetric_encryption_keys``
every entry is *sealed* when it is pushed (:class:`EntrySeal`), and a receiver
accepts an entry only if its seal verifies for the list it came from and its
tag was never claimed before (:class:`Claims`): the first receive of a tag,
by any process, claims it in Redis (``SET NX``) until the entry's deadline.

Plain layers use none of this: their entries are as they always were.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from typing import Any

from ..codec import TAG_LENGTH, Encryptor, MessageCodec
from ..names import stats_name
from .scripts import Command

logger = logging.getLogger("channels.layers.redis")

#: (deadline in ms, local parts, body) of one entry.
Parsed = tuple[int, bytes, bytes]

#: Milliseconds a claimed tag is remembered past its entry's deadline, for clock skew
#: between the sender and Redis (Fernet's own age check allows as much).
CLAIM_MARGIN_MS = 10_000
#: Where the tag of a received sealed entry is recorded: ``<layer prefix>claimed:<tag>``.
CLAIMED = "claimed:"


class EntrySeal:
    """Tag each entry of an encrypted layer with where it is stored; check tags on receive.

    The tag is an HMAC (:meth:`Encryptor.sign <channels.layers.codec.Encryptor.sign>`)
    of, exactly: the full Redis key of the list the entry is pushed to (layer
    prefix and channel, or a process's ``prefix!``), the entry's deadline in
    ms, its local parts (the channels of that process it is for; empty for
    other channels) and the SHA-256 of its Fernet token. A group send
    therefore binds each entry to its list and the set of local channels it
    names, not each member channel separately, and one token serves them all.
    Each entry also gets a random nonce of its own, bound into the tag, so
    that every tag is unique even when one encoding is pushed twice to the
    same list in the same millisecond (``send_encoded`` allows that): a tag is
    the entry's id for replay checks. The deadline is authenticated, so nobody
    can make an entry live longer than ``expiry``.

    A sealed entry's body is ``nonce + tag + token``.
    """

    __slots__ = ("_encryptor",)

    def __init__(self, encryptor: Encryptor) -> None:
        self._encryptor = encryptor

    @staticmethod
    def digest(token: bytes) -> bytes:
        """Return what a tag binds of *token*; computed once per send, whatever its entries."""
        return hashlib.sha256(token).digest()

    def header(self, key: str, deadline: int, locals_: bytes, digest: bytes) -> bytes:
        """Return the start of a sealed entry, nonce and tag included: the token follows it."""
        nonce = base64.urlsafe_b64encode(os.urandom(NONCE_BYTES))
        tag = self._encryptor.sign(_bound(key, deadline, locals_, nonce, digest))
        return b"%d|%s|%s%s" % (deadline, locals_, nonce, tag)

    def open(self, key: str, deadline: int, locals_: bytes, body: bytes) -> bytes | None:
        """Return the tag of a sealed entry's *body* if it verifies, else None."""
        nonce, tag, token = body[:NONCE_LENGTH], body[NONCE_LENGTH:SEAL_LENGTH], body[SEAL_LENGTH:]
        if len(nonce) == NONCE_LENGTH and self._encryptor.verify(
            _bound(key, deadline, locals_, nonce, self.digest(token)), tag
        ):
            return tag
        return None

    @staticmethod
    def tag_of(body: bytes) -> bytes:
        """Return the tag of a sealed entry's *body* (unchecked)."""
        return body[NONCE_LENGTH:SEAL_LENGTH]


#: Random bytes of a sealed entry's nonce, and their length base64url-encoded.
NONCE_BYTES = 12
NONCE_LENGTH = 16
#: Length of what a sealed entry's body starts with: nonce and tag.
SEAL_LENGTH = NONCE_LENGTH + TAG_LENGTH


def _bound(key: str, deadline: int, locals_: bytes, nonce: bytes, digest: bytes) -> bytes:
    # The key is ASCII (channel names are) and has no "|"; the nonce and digest
    # have fixed lengths: the fields cannot run together.
    return b"%s|%d|%s|%s%s" % (key.encode("ascii"), deadline, locals_, nonce, digest)


def entry_seal(codec: MessageCodec) -> EntrySeal | None:
    """Return the seal of *codec*'s layer, or None for a plain (unencrypted) layer."""
    return EntrySeal(codec.encryptor) if codec.encryptor is not None else None


class Claims:
    """Which sealed entries a receive accepts: those whose seal verifies, claimed first here.

    :meth:`prepare` checks the seals and returns the commands that claim the
    tags; the caller runs them in one round trip to the list's server, sync
    or async as the receive is; :meth:`accepted` keeps the entries whose
    claim won. An entry whose tag another receive claimed first is a replay.
    Every refusal is logged, without the entry's content.
    """

    def __init__(self, seal: EntrySeal, prefix: str) -> None:
        self.seal = seal
        self.prefix = prefix

    def prepare(
        self, key: str, parsed: list[Parsed], now: int
    ) -> tuple[list[tuple[bytes, Parsed]], list[Command]]:
        """Return the entries of list *key* whose seal verifies (with tags), and their claims."""
        opened: list[tuple[bytes, Parsed]] = []
        for deadline, locals_, body in parsed:
            tag = self.seal.open(key, deadline, locals_, body)
            if tag is None:
                logger.warning(
                    "Dropped an undecodable message in %s: its seal does not verify (moved "
                    "from another channel, changed, or sealed without this layer's keys)",
                    self._name(key),
                )
            else:
                opened.append((tag, (deadline, locals_, body[SEAL_LENGTH:])))
        claims: list[Command] = [
            (
                "SET",
                self.prefix + CLAIMED + tag.decode("ascii"),
                b"1",
                "NX",
                "PX",
                max(1, deadline - now) + CLAIM_MARGIN_MS,
            )
            for tag, (deadline, _, _) in opened
        ]
        return opened, claims

    def accepted(
        self, key: str, opened: list[tuple[bytes, Parsed]], claimed: list[Any]
    ) -> list[Parsed]:
        """Return the entries of *opened* whose claim won; log the replays."""
        accepted = [entry for (_, entry), won in zip(opened, claimed, strict=True) if won]
        if len(accepted) < len(opened):
            logger.warning(
                "Dropped %d replayed entries in %s: each was received before",
                len(opened) - len(accepted),
                self._name(key),
            )
        return accepted

    def unclaimed(self, key: str, opened: list[tuple[bytes, Parsed]]) -> list[Parsed]:
        """Drop *opened*: Redis would not record their claims (delivering them would let a
        replay through; they are off the list already, so they are lost with the connection)."""
        logger.warning(
            "Dropped %d entries from %s: their receipt could not be recorded in Redis",
            len(opened),
            self._name(key),
            exc_info=True,
        )
        return []

    def _name(self, key: str) -> str:
        return stats_name(key[len(self.prefix) :])


def claims_of(codec: MessageCodec, prefix: str) -> Claims | None:
    """Return the claims of *codec*'s layer, or None for a plain (unencrypted) layer."""
    seal = entry_seal(codec)
    return Claims(seal, prefix) if seal is not None else None
