"""The one error type the domain raises, with a message fit to show a sales rep.

Routes turn a ``DomainError`` into an inline message in the pane or a 4xx JSON body on the
API; nothing is written when one is raised, because services validate before they touch
the session and callers roll back on error.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses. ``errors`` maps a field name to its messages; ``code`` is
    what an API client branches on (stable, unlike the message)."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """The record does not exist, or not in the caller's organization (we never say which)."""

    status = 404
    code = "not_found"

    def __init__(self, what: str = "record") -> None:
        super().__init__(f"That {what} was not found.")


class Forbidden(DomainError):
    """The caller's role does not allow this change."""

    status = 403
    code = "forbidden"

    def __init__(self, message: str = "You are not allowed to change this record.") -> None:
        super().__init__(message)


class Conflict(DomainError):
    """An update based on a version of the record that is no longer the current one."""

    status = 409
    code = "version_conflict"

    def __init__(self, current: object) -> None:
        super().__init__("The record changed since the version this update is based on.")
        self.current = current  # the record as it is now
