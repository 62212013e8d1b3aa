"""The one error type the domain raises, with a message fit to show a sales rep.

Routes turn a ``DomainError`` into an inline message in the pane or a 4xx JSON body on the
API; nothing is written when one is raised, because services validate before they touch
the session and callers roll back on error.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses. ``errors`` maps a field name to its messages."""

    status = 400

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFound(DomainError):
    """The record does not exist, or not in the caller's organization (we never say which)."""

    status = 404

    def __init__(self, what: str = "record") -> None:
        super().__init__(f"That {what} was not found.")


class Forbidden(DomainError):
    """The caller's role does not allow this change."""

    status = 403

    def __init__(self, message: str = "You are not allowed to change this record.") -> None:
        super().__init__(message)
