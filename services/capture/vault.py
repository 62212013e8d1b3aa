"""Secrets kept at rest: the refresh and access tokens of connected mailboxes, encrypted with
Fernet (``cryptography``: AES-128-CBC with an HMAC-SHA256, a timestamp in every token).

Keys rotate without a pause: ``INBOXCRM_CAPTURE_KEYS`` lists them newest first; the newest
encrypts, every one listed decrypts (``MultiFernet``). To rotate, put a new key in front,
run ``flask --app wsgi capture rotate-keys`` (every secret encrypted again with the newest),
then drop the old key. The embedded default derives one key from ``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import Mailbox


class SecretUnreadable(Exception):
    """A secret none of the configured keys opens: a key was dropped before its secrets were
    rotated. The mailbox is reconnected."""


class Vault:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("The vault needs at least one key.")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError):
            raise ValueError(
                "INBOXCRM_CAPTURE_KEYS holds Fernet keys (32 bytes, url-safe base64), comma-separated, newest first."
            ) from None

    @classmethod
    def derived(cls, secret_key: str) -> Vault:
        """The embedded default's one key, derived from the app's secret key."""
        digest = hashlib.sha256(b"inboxcrm capture vault\0" + secret_key.encode("utf-8")).digest()
        return cls([base64.urlsafe_b64encode(digest).decode("ascii")])

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretUnreadable("The saved sign-in cannot be read with the current keys.") from None

    def rotate(self, sealed: str) -> str:
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise SecretUnreadable("The saved sign-in cannot be read with the current keys.") from None


def rotate_secrets(session: Session, vault: Vault) -> tuple[int, int]:
    """Every mailbox's secrets encrypted again with the newest key. Returns how many mailboxes
    were rotated, and how many held a secret no key opens (those are left, to be reconnected)."""
    rotated = unreadable = 0
    for mailbox in session.scalars(
        select(Mailbox).where(Mailbox.secret.is_not(None) | Mailbox.access_secret.is_not(None))
    ):
        try:
            if mailbox.secret:
                mailbox.secret = vault.rotate(mailbox.secret)
            if mailbox.access_secret:
                mailbox.access_secret = vault.rotate(mailbox.access_secret)
            rotated += 1
        except SecretUnreadable:
            unreadable += 1
    session.flush()
    return rotated, unreadable
