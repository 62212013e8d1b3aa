"""The dashboard's one exception to "one session a request": its heaviest figures computed in a
second reading session while the page's own session computes the rest.

The database works on both sessions at once (PostgreSQL a server process each; SQLite's readers
side by side in WAL mode, its module letting go of the GIL while a statement runs), so the
dashboard takes about as long as its larger half. On the report, a figure the page shows is
declared ``@prefetched`` (computed here) or ``@on_page`` (by the page's own session meanwhile),
instead of ``@cached_property`` (a figure only a CSV reads). ``tests/test_dashboard.py`` renders
the page to check that these cannot drift from what it reads: the page reads every figure
computed for it, and nothing it reads is left to compute while it renders.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache, cached_property
from typing import Any, Callable, TypeVar

from sqlalchemy.orm import Session, joinedload

from services.models import User

T = TypeVar("T")


class prefetched(cached_property[T]):
    """A figure of the report that ``compute_page`` computes in the second session: reading it
    waits for that session's answer (or raises its error), else computes it here."""

    def __get__(self, report: Any, owner: type | None = None) -> Any:
        if report is None:
            return self
        if self.attrname not in vars(report) and (alongside := report.alongside) is not None:
            value = vars(report)[self.attrname] = alongside.result()[self.attrname]
            return value
        return super().__get__(report, owner)


class on_page(cached_property[T]):
    """A figure the dashboard shows that the page's own session computes before rendering, while
    the second session computes the ``prefetched`` ones (none of these reads one of those)."""


def prefetched_names(report_type: type) -> tuple[str, ...]:
    """The figures of a report class that the second session computes."""
    return tuple(name for name, attribute in vars(report_type).items() if isinstance(attribute, prefetched))


def page_names(report_type: type) -> tuple[str, ...]:
    """The rest of what the page shows, in the order the class declares them."""
    return tuple(name for name, attribute in vars(report_type).items() if isinstance(attribute, on_page))


@cache
def _executor() -> ThreadPoolExecutor:
    """The process's threads for reports' second sessions (made in the process that serves,
    after gunicorn's fork)."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="report")


def compute_page(report: Any, sessions: Callable[[], Session]) -> None:
    """Every figure the dashboard shows, before it is rendered: the prefetched ones in a session
    of their own (``sessions`` makes one: a reader's), the ``on_page`` ones in the report's own
    meanwhile. The second session loads the actor itself and reads its own snapshot, as each
    statement of a report on PostgreSQL does (read committed). Not for a store in memory (each
    connection its own), nor for a report already read."""
    scope = report.scope
    bind = scope.session.get_bind()
    in_memory = bind.dialect.name == "sqlite" and bind.url.database in (None, "", ":memory:")
    names = prefetched_names(type(report))
    if in_memory or report.alongside is not None or set(names) & set(vars(report)):
        return
    report.alongside = _executor().submit(_compute, report, sessions, names, scope.actor.id)
    for name in page_names(type(report)):
        getattr(report, name)


def _compute(report: Any, sessions: Callable[[], Session], names: tuple[str, ...], actor_id: int) -> dict[str, Any]:
    """The prefetched figures, in a session of their own. Nothing of the first session is
    touched here (its actor is loaded again, by id): a session and its objects belong to one
    thread."""
    with sessions() as session:
        twin = report.on(session, session.get(User, actor_id, options=[joinedload(User.organization)]))
        # Each figure's function run straight, not through its property: Python 3.11's
        # cached_property holds one lock per property for every instance while it computes,
        # and the first session, reading the same property, would wait on it.
        return {name: vars(type(twin))[name].func(twin) for name in names}
