"""The schema is made only by migrations, and every migration goes down as well as up — on both backends,
including the row-level-security policies (PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from vigil.config import Settings
from vigil.core.database import build_engine
from vigil.migrations.runner import downgrade_database, upgrade_database


def _rls_tables(settings: Settings) -> set[str]:
    engine = build_engine(settings, admin=True)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity AND relkind = 'r'")
            )
            return {r[0] for r in rows}
    finally:
        engine.dispose()


def test_every_migration_goes_down_and_up_again(any_db_settings: Settings) -> None:
    any_db_settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = build_engine(any_db_settings, admin=True)
    postgres = not any_db_settings.is_sqlite
    try:
        upgrade_database(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"datasets", "jobs", "tenants", "users", "api_keys"} <= tables
        if postgres:
            assert "datasets" in _rls_tables(any_db_settings)
        downgrade_database(engine, "0003")
        if postgres:
            assert not _rls_tables(any_db_settings)
        downgrade_database(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade_database(engine)
        assert set(inspect(engine).get_table_names()) == tables
        if postgres:
            assert "jobs" in _rls_tables(any_db_settings)
    finally:
        engine.dispose()
