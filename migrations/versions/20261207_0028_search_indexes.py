"""The CRM search by any part of a name, an address or a domain, through an index: trigram GIN
indexes on PostgreSQL (pg_trgm), FTS5 trigram tables kept by triggers on SQLite. The same as
``services.search_index`` makes after the models' ``create_all``, written out here so that
this migration stays what it was whatever that module becomes.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 21:50:00
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0028'
down_revision: Union[str, Sequence[str], None] = '0027'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

INDEXED = (
    ("contacts", "name"),
    ("contact_emails", "address"),
    ("accounts", "name"),
    ("account_domains", "domain"),
    ("opportunities", "name"),
)


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "sqlite":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, field in INDEXED:
            op.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_{field}_trgm ON {name} USING gin (lower({field}) gin_trgm_ops)")
        return
    for name, field in INDEXED:
        fts = f"{name}_search"
        op.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({field}, content='{name}', "
            f"content_rowid='id', tokenize='trigram')"
        )
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT ON {name} BEGIN "
            f"INSERT INTO {fts}(rowid, {field}) VALUES (new.id, new.{field}); END"
        )
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE ON {name} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {field}) VALUES ('delete', old.id, old.{field}); END"
        )
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE OF {field} ON {name} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {field}) VALUES ('delete', old.id, old.{field}); "
            f"INSERT INTO {fts}(rowid, {field}) VALUES (new.id, new.{field}); END"
        )
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")  # the rows already there


def downgrade() -> None:
    """Downgrade schema."""
    for name, field in INDEXED:
        if op.get_bind().dialect.name != "sqlite":
            op.execute(f"DROP INDEX IF EXISTS ix_{name}_{field}_trgm")
            continue
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}_search_{event}")
        op.execute(f"DROP TABLE IF EXISTS {name}_search")
