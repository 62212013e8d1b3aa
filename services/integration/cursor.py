"""Where a client's reading stands: a sync of one record type (``services.integration.sync``), or the event
list (``services.integration.webhooks``): past the row (sequence, id). The sequence is the organization's
change number, taken by each transaction and held until it commits, so a reader that has seen
number N has seen every commit up to N; ``rows_past`` reads on from a cursor."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from services.errors import DomainError

LARGEST = 2**63 - 1  # a cursor's numbers fit the store's BIGINT (a larger one overflowed SQLite's driver: a 500)
_NUMBER = re.compile(r"-?[0-9]{1,19}")
# What the API's document says a cursor is: "<sequence>.<id>", as ``encode`` writes it.
PATTERN = r"^(-1|[0-9]{1,18})\.[0-9]{1,18}$"
_PLAIN = re.compile(r"(-?[0-9]{1,19})\.([0-9]{1,19})")


@dataclass(frozen=True)
class Cursor:
    """Where a client's sync stands: past the record (``seq``, ``id``) of this type."""

    seq: int = -1
    id: int = 0

    def encode(self) -> str:
        return f"{self.seq}.{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        """A cursor the API gave: ``<sequence>.<id>``, or the base64 of ``v1:<sequence>:<id>``
        that it gave before 2026-12-07 (a client may still hold one)."""
        if not text:
            return cls()
        try:
            if plain := _PLAIN.fullmatch(text):
                seq, ident = plain.groups()
            else:
                version, seq, ident = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().split(":")
                if version != "v1" or not (_NUMBER.fullmatch(seq) and _NUMBER.fullmatch(ident)):
                    raise ValueError(version)
            if not (-1 <= int(seq) <= LARGEST and 0 <= int(ident) <= LARGEST):
                raise ValueError(seq)
            return cls(int(seq), int(ident))
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise DomainError(
                "That cursor is not one this API gave.",
                {"cursor": ["Not a cursor of this API."]},
                code="invalid_cursor",
            ) from None


def rows_past(
    session: Session, query: Any, seq_column: Any, id_column: Any, cursor: Cursor, limit: int, plain: bool = False
) -> list[Any]:
    """The first ``limit`` rows of ``query`` past the cursor in (sequence, id) order, as two
    seeks of the (organization, sequence, id) index: the rest of the cursor's sequence number,
    then the numbers after it. (A row-value comparison, ``(seq, id) > (s, i)``, makes SQLite
    walk every row of the cursor's number before it: a full sync slowed down page after page.)"""
    read = session.execute if plain else session.scalars
    rows = list(read(query.where(seq_column == cursor.seq, id_column > cursor.id).order_by(id_column).limit(limit)))
    if len(rows) < limit:
        rows += read(query.where(seq_column > cursor.seq).order_by(seq_column, id_column).limit(limit - len(rows)))
    return rows
