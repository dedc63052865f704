"""`vigil db upgrade` as the owner and `vigil db create-app-role`: the server then runs as a role that owns nothing,
is no superuser, and is bound by row-level security; the command is idempotent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from vigil.cli import app

pytestmark = pytest.mark.postgres


@pytest.fixture
def role(postgres_url: str) -> Iterator[str]:
    name = f"vigil_test_cli_{uuid.uuid4().hex[:10]}"
    yield name
    server = make_url(postgres_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(server.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(postgres_url).database}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def test_upgrade_then_create_app_role(postgres_url: str, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_DATABASE_URL", postgres_url)
    runner = CliRunner()
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    for expected in ("created", "exists"):  # twice: the second run only grants again
        made = runner.invoke(app, ["db", "create-app-role", role], env={"VIGIL_APP_ROLE_PASSWORD": "s3cret-pw"})
        assert made.exit_code == 0, made.output
        assert expected in made.output
    refused = runner.invoke(app, ["db", "create-app-role", "Robert'); DROP TABLE users;--"])
    assert refused.exit_code == 2
    app_url = make_url(postgres_url).set(username=role, password="s3cret-pw")
    engine = create_engine(app_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tenants")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM datasets")).scalar() == 0
            owner = conn.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'datasets'")).scalar()
            assert owner != role
            with pytest.raises(Exception, match=r"permission denied|must be owner"):
                conn.execute(text("ALTER TABLE datasets DISABLE ROW LEVEL SECURITY"))
    finally:
        engine.dispose()
