"""The migrations build the models' schema, on SQLite and PostgreSQL, through the CLI."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from addin import create_app
from addin.cli import alembic_config
from alembic import command
from services.db import make_engine
from services.models import Base


def assert_matches_models(engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
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
