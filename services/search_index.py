"""The CRM search's indexes (``services.search``): a name, an address or a domain found by any
part of it ("pion" finds Pioneer Freight), without reading every row.

No B-tree index serves ``LIKE '%text%'``; each back end has its own index that does:

* **PostgreSQL**: a trigram GIN index (``pg_trgm``) on ``lower(column)``: the search's own
  ``lower(column) LIKE '%text%'`` uses it as it stands.
* **SQLite**: an FTS5 table with the trigram tokenizer per column, kept by triggers on the table
  it indexes (external content: the text is stored once, in the table). A phrase of the
  query's trigrams finds the row ids (three letters or more; fewer are matched directly).

Both are made by migration 0028 (which writes its statements out) and, for a store built from
the models (the tests'), here, after ``create_all``. Neither is a model, so the schema's comparison with the models leaves them out
(``is_search_index``). An erasure merges the SQLite indexes afterwards (``optimize``): a
deleted row's trigrams leave the index's pages, not only its answers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DDL, MetaData, Select, bindparam, event, literal_column, select, table
from sqlalchemy.engine import Connection

# (table, column) pairs the search matches by any part.
INDEXED = (
    ("contacts", "name"),
    ("contact_emails", "address"),
    ("accounts", "name"),
    ("account_domains", "domain"),
    ("opportunities", "name"),
)
TRIGRAM = 3  # the fewest letters a trigram index can look up
SHADOW = ("_data", "_idx", "_docsize", "_config")  # the tables FTS5 keeps beside each index


def fts_table(name: str) -> str:
    return f"{name}_search"


def sqlite_statements() -> list[str]:
    made = []
    for name, field in INDEXED:
        fts = fts_table(name)
        made += [
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({field}, content='{name}', "
            f"content_rowid='id', tokenize='trigram')",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT ON {name} BEGIN "
            f"INSERT INTO {fts}(rowid, {field}) VALUES (new.id, new.{field}); END",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE ON {name} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {field}) VALUES ('delete', old.id, old.{field}); END",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE OF {field} ON {name} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {field}) VALUES ('delete', old.id, old.{field}); "
            f"INSERT INTO {fts}(rowid, {field}) VALUES (new.id, new.{field}); END",
        ]
    return made


def postgresql_statements() -> list[str]:
    return ["CREATE EXTENSION IF NOT EXISTS pg_trgm"] + [
        f"CREATE INDEX IF NOT EXISTS ix_{name}_{field}_trgm ON {name} USING gin (lower({field}) gin_trgm_ops)"
        for name, field in INDEXED
    ]


def install(metadata: MetaData) -> None:
    """Make the indexes whenever the models' tables are created (``create_all``)."""
    for statement in sqlite_statements():
        event.listen(metadata, "after_create", DDL(statement).execute_if(dialect="sqlite"))
    for statement in postgresql_statements():
        event.listen(metadata, "after_create", DDL(statement).execute_if(dialect="postgresql"))


def is_search_index(name: str | None, type_: str) -> bool:
    """Whether a table or index is one of these (for the schema's comparison with the models)."""
    if not name:
        return False
    if type_ == "index":
        return name.endswith("_trgm")
    return any(name in (fts_table(t), fts_table(t) + suffix) for t, _ in INDEXED for suffix in SHADOW)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's filter: the models' objects, not the search's indexes."""
    return not is_search_index(name, type_)


def phrase(query: str) -> str | None:
    """What SQLite's indexes look ``query`` up by: a phrase of its trigrams (``'"pion"'``: "pio"
    then "ion", next to each other), which is the substring itself, whatever the case, with
    ``%`` and ``_`` taken literally. None where the index cannot look it up (fewer than three
    letters): the caller matches directly."""
    if len(query) < TRIGRAM:
        return None
    return '"' + query.replace('"', '""') + '"'


def matching_ids(name: str) -> Select[Any]:
    """On SQLite, the ids (as ``id``) of ``name``'s rows whose indexed column holds the bound
    ``phrase``, looked up in its trigram index. It is the index's answer alone: a ``LIKE`` on
    the index would read each candidate's text back from the table to check it again, at three
    to four times the cost."""
    fts = fts_table(name)
    return (
        select(literal_column("rowid").label("id"))
        .select_from(table(fts))
        .where(literal_column(fts).op("MATCH")(bindparam("phrase")))
    )


def optimize(connection: Connection) -> None:
    """Merge the SQLite indexes' segments: what deleted rows left in them goes (an erasure)."""
    if connection.dialect.name == "sqlite":
        for name, _ in INDEXED:
            connection.exec_driver_sql(f"INSERT INTO {fts_table(name)}({fts_table(name)}) VALUES ('optimize')")
