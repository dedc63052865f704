"""The PostgreSQL application role: a login role that owns nothing, so row-level security applies to it.

Migrations run as the schema owner (`VIGIL_DATABASE_ADMIN_URL`); the server connects as this role
(`VIGIL_DATABASE_URL`). It may read and write the tables but not change them, and, being neither their owner
nor a superuser (nor BYPASSRLS), it is bound by the tenant-isolation policies of migration 0004.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, text

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain role name (lower-case letters, digits, _): {name!r}")
    return f'"{name}"'


def grant_statements(role: str, database: str) -> list[str]:
    """What the role needs on the current database: its tables now and those later migrations make."""
    r = _ident(role)
    db = '"' + database.replace('"', '""') + '"'
    return [
        f"GRANT CONNECT ON DATABASE {db} TO {r}",
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r}",
    ]


def create_app_role(connection: Connection, *, role: str, password: str | None) -> bool:
    """Creates the login role if it does not exist (idempotent) and grants it; returns whether it was created."""
    r = _ident(role)
    exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar() is not None
    if not exists:
        connection.execute(text(f"CREATE ROLE {r} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"))
    if password is not None:
        # ALTER ROLE takes no bind parameters: quote the literal the way PostgreSQL does.
        literal = "'" + password.replace("'", "''") + "'"
        connection.execute(text(f"ALTER ROLE {r} PASSWORD {literal}"))
    database = str(connection.execute(text("SELECT current_database()")).scalar())
    for statement in grant_statements(role, database):
        connection.execute(text(statement))
    return not exists
