"""``Shown``: a list a page cuts short, with how many rows there are. Every figure or list
that a page shows only the first rows of takes one ``limit`` and answers one of these; the CSV
export asks for no limit and has them all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

Row = TypeVar("Row")


@dataclass
class Shown(Generic[Row]):
    """The first rows of a list (all of them when nothing cut it), and how many there are."""

    rows: list[Row]
    total: int

    @classmethod
    def of(cls, rows: list[Row], limit: int | None) -> Shown[Row]:
        """The first ``limit`` of rows already in the order the page shows them."""
        return cls(rows if limit is None else rows[:limit], len(rows))

    def first(self, limit: int) -> Shown[Row]:
        """Fewer of the same rows, for a smaller view; the total stays."""
        return Shown(self.rows[:limit], self.total)

    @property
    def cut(self) -> bool:
        """Whether the page leaves some out (and so says how many there are)."""
        return self.total > len(self.rows)
