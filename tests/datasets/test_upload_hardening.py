"""Hostile uploads over HTTP: a bomb is refused from its metadata against the rows quota, malformed CSV and
undecodable headers are 422s that say where, and no problem names a file, a statement or a driver of the server."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, make_settings
from tests.web.test_problems import assert_problem
from vigil.app import create_app
from vigil.config import Settings
from vigil.web.problems import scrubbed

CSV = {"Content-Type": "text/csv"}
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}


def _datasets(client: TestClient, tenant: Tenant) -> list[object]:
    items: list[object] = client.get("/api/v1/datasets", headers=tenant.viewer).json()["items"]
    return items


def test_a_parquet_bomb_is_refused_by_the_rows_quota_before_decoding(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", quota_rows_per_dataset=1_000_000)
    chunk = pa.table({"x": pa.array(np.zeros(1_000_000))})
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, chunk.schema, compression="zstd") as writer:
        for _ in range(20):
            writer.write_table(chunk, row_group_size=1_000_000)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        token = client.post("/api/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        response = client.post("/api/v1/datasets?name=bomb", content=sink.getvalue(), headers={**auth, **PARQUET})
        body = assert_problem(response, 403, "quota-exceeded")
        assert body["quota"] == "rows_per_dataset"
        assert body["limit"] == 1_000_000
        assert client.get("/api/v1/datasets", headers=auth).json()["items"] == []


def test_an_unterminated_quoted_field_is_a_422_naming_the_line(client: TestClient, tenant: Tenant) -> None:
    body = b'a,b\n1,2\n3,"four\n5,6\n'
    response = client.post("/api/v1/datasets?name=q", content=body, headers={**tenant.analyst, **CSV})
    problem = assert_problem(response, 422, "invalid-input")
    assert "line 3" in str(problem["detail"])
    assert problem["line"] == 3
    assert _datasets(client, tenant) == []


def test_a_csv_header_that_is_not_utf8_is_a_422(client: TestClient, tenant: Tenant) -> None:
    response = client.post("/api/v1/datasets?name=u", content=b"a\xff\xfe,b\n1,2\n", headers={**tenant.analyst, **CSV})
    assert_problem(response, 422, "malformed-file")
    assert _datasets(client, tenant) == []


def test_a_malformed_file_never_names_the_servers_files(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    for headers, files in (
        ({**tenant.analyst, **PARQUET}, None),
        (tenant.analyst, {"file": ("x.parquet", b"PAR1 not really PAR1", "application/octet-stream")}),
        (tenant.analyst, {"file": ("x.arrow", b"ARROW1\x00\x00 not really ARROW1", "application/octet-stream")}),
    ):
        if files is None:
            response = client.post("/api/v1/datasets?name=m", content=b"PAR1 junk PAR1", headers=headers)
        else:
            response = client.post("/api/v1/datasets", files=files, headers=headers)
        problem = assert_problem(response, 422, "malformed-file")
        text = response.text
        for leak in (str(settings.data_dir), str(Path(settings.data_dir).resolve()), "staging", "/tmp/"):
            assert leak not in text, (leak, problem["detail"])


def test_the_problem_handler_cuts_paths_sql_and_drivers() -> None:
    assert scrubbed("cannot open '/var/lib/vigil/staging/tnt_1/x.part': no") == "cannot open '<path>': no"
    assert scrubbed(r"C:\vigil\data\x.parquet is bad") == "<path> is bad"
    statement = (
        "(sqlite3.IntegrityError) UNIQUE constraint failed: users.email [SQL: INSERT INTO users (email) VALUES (?)]"
        " [parameters: ('a@b',)] (Background on this error at: https://sqlalche.me/e/20/gkpj)"
    )
    assert scrubbed(statement) == "UNIQUE constraint failed: users.email"
    assert scrubbed('Traceback (most recent call last):\n  File "/usr/lib/x.py", line 1\nBoom') == ""
    # What is not a server path stays: a route, a ratio, a URL path the client sent.
    assert scrubbed("No route '/api/v1/nothing'.") == "No route '/api/v1/nothing'."
    assert scrubbed("at most 10 rows / 2 columns") == "at most 10 rows / 2 columns"
