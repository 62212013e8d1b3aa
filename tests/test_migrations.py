"""The migrations build the models' schema, on SQLite and PostgreSQL, through the CLI."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from datetime import date

from sqlalchemy import inspect

from addin import create_app
from addin.cli import alembic_config
from alembic import command
from services.db import make_engine
from services import search_index
from services.models import Base


def assert_matches_models(engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": search_index.include_object}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_flask_db_upgrade_builds_the_schema_on_sqlite(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    result = create_app().test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    assert_matches_models(engine)
    assert "activities" in inspect(engine).get_table_names()


def test_upgrade_and_downgrade_on_postgresql(postgres_server):
    url = postgres_server.fresh_database("inboxcrm_migrations")
    config = alembic_config(url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    engine = make_engine(url)
    assert_matches_models(engine)
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_demo_data_command_loads_once(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = create_app().test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    loaded = runner.invoke(args=["demo-data", "--scale", "0.02", "--today", "2026-11-20"])
    assert loaded.exit_code == 0, loaded.output
    assert '"activities"' in loaded.output
    again = runner.invoke(args=["demo-data", "--if-empty"])
    assert again.exit_code == 0 and "already holds data" in again.output
    refused = runner.invoke(args=["demo-data"])
    assert refused.exit_code != 0 and "empty" in refused.output


def test_upgrading_a_store_with_data_scores_its_notes_and_fills_the_monthly_rollups(tmp_path, postgres_server):
    """A store at revision 0003 (before note scores and monthly rollups), holding calls and
    visits and their daily rollups, upgraded to head: the notes are scored, the flagged ones
    counted, the months filled; and all of it equals what a rebuild computes from scratch."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from services.models import Organization
    from services.rollups import rebuild_rollups
    from tests.helpers import rollup_snapshot

    for url in (f"sqlite:///{tmp_path / 'old.db'}", postgres_server.fresh_database("inboxcrm_old_store")):
        config = alembic_config(url)
        config.attributes["configure_logger"] = False
        command.upgrade(config, "0003")
        engine = make_engine(url)
        with engine.begin() as connection:
            run = lambda sql, **values: connection.execute(text(sql), values)  # noqa: E731
            run(
                "INSERT INTO organizations (id, name, time_zone, fiscal_year_start_month, currency, domains, settings, created_at) "
                "VALUES (1, 'Northwind', 'Europe/Berlin', 1, 'EUR', '[]', '{}', '2026-01-01')"
            )
            run(
                "INSERT INTO users (id, organization_id, email, name, role, is_active, token_version, created_at) "
                "VALUES (1, 1, 'rita@northwind.test', 'Rita', 'rep', true, 0, '2026-01-01')"
            )
            run(
                "INSERT INTO note_checklists (id, organization_id, activity_type, questions) VALUES (1, 1, 'call', :q)",
                q='["Truck size", "Lanes used"]',
            )
            notes = [
                ("call", "Truck size: 40 ft", "2026-10-30 23:30:00"),
                ("call", "Nice chat.", "2026-11-02 09:00:00"),
                ("call", None, "2026-11-02 10:00:00"),
                ("visit", "Saw the depot", "2026-11-03 10:00:00"),
            ]
            for n, (kind, body, when) in enumerate(notes, start=1):
                run(
                    "INSERT INTO activities (id, organization_id, type, direction, occurred_at, body_text, owner_id, source, is_private, "
                    "created_at, updated_at) VALUES (:id, 1, :kind, 'outbound', :when, :body, 1, 'web', false, :when, :when)",
                    id=n,
                    kind=kind,
                    body=body,
                    when=when,
                )
        with Session(engine) as session:
            rebuild_rollups_at_0003 = text(
                "INSERT INTO activity_rollups (organization_id, owner_id, day, type, direction, outcome, count, minutes) "
                "VALUES (1, 1, :day, :kind, 'outbound', '', :n, 0)"
            )
            for day, kind, n in (("2026-10-31", "call", 1), ("2026-11-02", "call", 2), ("2026-11-03", "visit", 1)):
                session.execute(rebuild_rollups_at_0003, {"day": day, "kind": kind, "n": n})
            session.commit()
        command.upgrade(config, "head")
        with Session(engine) as session:
            scores = session.execute(
                text("SELECT id, checklist_questions, checklist_answered FROM activities ORDER BY id")
            ).all()
            assert [tuple(row) for row in scores] == [(1, 2, 1), (2, 2, 0), (3, 2, 0), (4, 0, 0)]
            migrated = rollup_snapshot(session, 1)
            assert (
                "month",
                1,
                date(2026, 11, 1),
                "call",
                "outbound",
                "",
                2,
                0,
                2,
                2,
                0,
                0,
                0,
                0,
                0,
                0,
            ) in migrated  # both on a Monday
            rebuild_rollups(session, session.get(Organization, 1))
            assert rollup_snapshot(session, 1) == migrated
            session.rollback()
        engine.dispose()
