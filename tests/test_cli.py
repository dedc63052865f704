"""The `vigil` command's operator side: a server that cannot listen writes nothing, and a lost password is reset
from the console (`vigil admin reset-password`)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, bearer, login
from tests.support.cluster import settings_env
from vigil.cli import app as cli
from vigil.config import Settings

SECRET = "test-secret-key-that-is-long-enough-0123456789"


def test_a_busy_port_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "vigil", "serve", "--port", str(port)],
            env=settings_env({"data_dir": data_dir, "secret_key": SECRET, "environment": "test"}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    refusal = " ".join(result.stderr.split())
    assert f"cannot listen on 127.0.0.1:{port}" in refusal
    assert "make run PORT=N" in refusal  # a newcomer on `make run` learns how to choose another port
    assert "superadmin" not in result.stdout + result.stderr
    assert not data_dir.exists(), "no database, secret or lock may be made for a server that did not start"


def _env(settings: Settings) -> dict[str, str]:
    return {
        "VIGIL_DATA_DIR": str(settings.data_dir),
        "VIGIL_DATABASE_URL": settings.database_url_resolved,
        "VIGIL_SECRET_KEY": SECRET if settings.secret_key is None else settings.secret_key.get_secret_value(),
        "VIGIL_ENVIRONMENT": "test",
        "VIGIL_ARGON2_TIME_COST": "1",
        "VIGIL_ARGON2_MEMORY_KIB": "1024",
    }


def test_reset_password_gives_a_new_password_and_ends_the_old_sessions(client: TestClient, settings: Settings) -> None:
    old_token = login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    result = CliRunner().invoke(cli, ["admin", "reset-password", ADMIN_EMAIL], env=_env(settings))
    assert result.exit_code == 0, result.output
    new_password = result.output.strip().rsplit(": ", 1)[-1]
    assert len(new_password) >= 20
    assert client.get("/api/v1/me", headers=bearer(old_token)).status_code == 401
    refused = client.post("/api/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert refused.status_code == 401
    assert client.get("/api/v1/me", headers=bearer(login(client, ADMIN_EMAIL, new_password))).status_code == 200
    events = client.get(
        "/api/v1/audit-events?action=user.password_reset", headers=bearer(login(client, ADMIN_EMAIL, new_password))
    ).json()["items"]
    assert [e["actor"] for e in events] == ["console"]


def test_reset_password_from_stdin_follows_the_policy(client: TestClient, settings: Settings) -> None:
    runner = CliRunner()
    weak = runner.invoke(
        cli, ["admin", "reset-password", ADMIN_EMAIL, "--password-stdin"], input="password\n", env=_env(settings)
    )
    assert weak.exit_code == 1
    assert "does not meet the policy" in weak.output
    chosen = "a brand new operator passphrase"
    done = runner.invoke(
        cli, ["admin", "reset-password", ADMIN_EMAIL, "--password-stdin"], input=chosen + "\n", env=_env(settings)
    )
    assert done.exit_code == 0, done.output
    assert chosen not in done.output
    assert login(client, ADMIN_EMAIL, chosen)


@pytest.mark.parametrize("email", ["nobody@example.com"])
def test_reset_password_of_an_unknown_account_changes_nothing(
    client: TestClient, settings: Settings, email: str
) -> None:
    result = CliRunner().invoke(cli, ["admin", "reset-password", email], env=_env(settings))
    assert result.exit_code == 1
    assert "not reset" in result.output
    assert login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
