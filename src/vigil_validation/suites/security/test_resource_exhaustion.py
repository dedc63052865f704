"""Resource exhaustion through input: bodies past a route's limit (whatever their media type, chunked or not),
compressed bodies, decompression bombs in Parquet and Arrow, inline detection past its row cap, malformed CSV and
huge integers — each refused with a 4xx problem before the server decodes it, naming no file of the server; and
the server's peak resident memory across all of it stays within a bound of its warm baseline."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import ipc

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem, watch_job
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import API, Recorder, record_attack
from vigil_validation.suites.security.memory import PeakMemory
from vigil_validation.targets import Target
from vigil_validation.testdata import LabelledData

MIB = 1024 * 1024
PARQUET = "application/vnd.apache.parquet"
ARROW = "application/vnd.apache.arrow.stream"
# The measurements: a 28 MB body to /auth/token cost ~700 MB; 856 KB of Parquet decoded to 200M rows.
HUGE_BODY_BYTES = 28 * MIB
BOMB_ROWS = 200_000_000
INLINE_BOMB_ROWS = 2_000_000
# What the server may add to its warm resident memory while refusing all of the above (the bound).
MEMORY_HEADROOM_MIB = 300


# -- payloads: small on the wire, enormous once decoded ------------------------------------------------------
def parquet_rows_bomb(rows: int = BOMB_ROWS, width: int = 1) -> bytes:
    """Zeros in row groups of a million: dictionary and run-length encoding make each group a few bytes."""
    group = pa.table({f"f{i}": pa.array(np.zeros(1_000_000)) for i in range(width)})
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, group.schema, compression="zstd") as writer:
        for _ in range(max(rows // 1_000_000, 1)):
            writer.write_table(group, row_group_size=1_000_000)
    return sink.getvalue()


def parquet_text_bomb(rows: int = 4_000, width: int = MIB) -> bytes:
    """One megabyte-long string referenced by every row: ~4 GB of text once decoded."""
    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["s" * width]))
    sink = io.BytesIO()
    pq.write_table(pa.table({"s": column}), sink, compression="zstd")
    return sink.getvalue()


def arrow_bomb(rows: int, columns: list[str]) -> bytes:
    """A zstd-compressed Arrow stream of zeros."""
    table = pa.table({name: np.zeros(rows) for name in columns})
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    return sink.getvalue()


def gzip_bomb(decoded_bytes: int = 512 * MIB) -> bytes:
    """CSV of zeros, gzip-compressed about a thousandfold."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    block = b"0,0\n" * (MIB // 4)
    parts = [compressor.compress(b"a,b\n")]
    parts += [compressor.compress(block) for _ in range(decoded_bytes // MIB)]
    return b"".join([*parts, compressor.flush()])


def json_records_bomb(text_bytes: int = 60 * MIB) -> bytes:
    """JSON records: every 8 bytes of text a Python dict once parsed (~1.5 GB for 60 MB), within the upload limit."""
    return b"[" + b",".join([b'{"a":0}'] * (text_bytes // 8)) + b"]"


def chunks(total: int, size: int = MIB) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def _refused(response: httpx.Response, allowed: tuple[int, ...], what: str) -> None:
    assert response.status_code in allowed, f"{what}: {response.status_code} {response.text[:300]}"
    assert_problem(response, response.status_code)


def _raw(target: Target, client: VigilClient) -> httpx.Client:
    """A plain HTTP client with the caller's credentials, for bodies the SDK does not send (chunked streams)."""
    return httpx.Client(base_url=target.url, headers=client.auth_headers(), timeout=120)


def trained_detector(tenant: ProvisionedTenant, data: LabelledData, config: ValidationConfig) -> str:
    dataset = tenant.analyst.datasets.upload(data.csv, name="exhaustion")
    detector = tenant.analyst.detectors.create(name="exhaustion", algorithm="iforest", features=data.features)
    job = tenant.analyst.detectors.train(detector["id"], dataset["id"])
    final, _, _ = watch_job(tenant.analyst, job["id"], timeout=config.api.job_timeout_s, poll=0.2)
    assert final["status"] == "succeeded", final
    return str(detector["id"])


# -- each attack once, with its expected answer --------------------------------------------------------------
def test_body_limits_hold_before_parsing_whatever_the_media_type(
    tenant: ProvisionedTenant, target: Target, anonymous: VigilClient, record: Recorder
) -> None:
    login = anonymous.send(
        "POST",
        f"{API}/auth/token",
        content=b"x" * HUGE_BODY_BYTES,
        headers={"Content-Type": "text/plain"},
        authenticated=False,
    )
    _refused(login, (413,), "28 MB text/plain to /auth/token")
    record_attack(record, "body-limits", "auth-text-plain-28mb", login)
    with httpx.Client(base_url=target.url, timeout=120) as http:
        chunked = http.post(
            f"{API}/auth/token", content=chunks(HUGE_BODY_BYTES), headers={"Content-Type": "text/plain"}
        )
    _refused(chunked, (413,), "28 MB chunked to /auth/token")
    record_attack(record, "body-limits", "auth-chunked-28mb", chunked)
    for media in ("text/plain", "application/merge-patch+json", "application/octet-stream"):
        response = tenant.admin.send(
            "POST",
            f"{API}/api-keys",
            content=b'{"name": "' + b"k" * HUGE_BODY_BYTES + b'"}',
            headers={"Content-Type": media},
        )
        _refused(response, (413,), f"28 MB {media} to a JSON route")
        record_attack(record, "body-limits", f"json-route-{media.split('/')[1]}", response)
    with _raw(target, tenant.admin) as http:
        chunked_json = http.post(
            f"{API}/api-keys", content=chunks(HUGE_BODY_BYTES), headers={"Content-Type": "application/json"}
        )
    _refused(chunked_json, (413,), "28 MB chunked JSON")
    record_attack(record, "body-limits", "json-route-chunked", chunked_json)
    assert tenant.admin.send("GET", f"{API}/api-keys").json()["items"] == []


def test_compressed_and_bomb_uploads_are_refused_and_store_nothing(tenant: ProvisionedTenant, record: Recorder) -> None:
    attacks: dict[str, tuple[bytes, dict[str, str], tuple[int, ...]]] = {
        # 415: not accepted at all; 413/422: accepted as a format but refused within its decode budget.
        "gzip-csv": (gzip_bomb(), {"Content-Type": "text/csv", "Content-Encoding": "gzip"}, (413, 415, 422)),
        "parquet-200m-rows": (parquet_rows_bomb(), {"Content-Type": PARQUET}, (403, 413, 422)),
        "parquet-text": (parquet_text_bomb(), {"Content-Type": PARQUET}, (403, 413, 422)),
        "arrow-zstd": (arrow_bomb(60_000_000, ["x"]), {"Content-Type": ARROW}, (403, 413, 422)),
        "json-records": (json_records_bomb(), {"Content-Type": "application/json"}, (403, 413, 422)),
    }
    for name, (body, headers, allowed) in attacks.items():
        if name != "json-records":
            assert len(body) < 2 * MIB, (name, len(body))  # small on the wire: the danger is in the decoding
        response = tenant.analyst.send("POST", f"{API}/datasets", content=body, params={"name": name}, headers=headers)
        _refused(response, allowed, name)
        record_attack(record, "decompression-bomb", name, response)
    assert tenant.viewer.send("GET", f"{API}/datasets").json()["items"] == []


def test_inline_detection_has_a_row_cap_for_every_form(
    tenant: ProvisionedTenant, labelled_data: LabelledData, validation_config: ValidationConfig, record: Recorder
) -> None:
    detector_id = trained_detector(tenant, labelled_data, validation_config)
    url = f"{API}/detectors/{detector_id}/detect"
    for media, body in (
        (PARQUET, parquet_rows_bomb(INLINE_BOMB_ROWS, width=len(labelled_data.features))),
        (ARROW, arrow_bomb(INLINE_BOMB_ROWS, labelled_data.features)),
    ):
        response = tenant.analyst.send("POST", url, content=body, headers={"Content-Type": media})
        _refused(response, (413, 422), f"{INLINE_BOMB_ROWS} rows as {media}")
        record_attack(record, "inline-row-cap", media.rsplit(".", 1)[1], response)


@pytest.mark.parametrize(
    ("name", "body", "where"),
    [
        ("unterminated-quote", b'a,b\n1,2\n3,"four\n5,6\n', "line 3"),
        ("header-not-utf8", b"a\xff\xfe,b\n1,2\n", None),
    ],
)
def test_malformed_csv_is_a_422_that_says_where(
    tenant: ProvisionedTenant, record: Recorder, name: str, body: bytes, where: str | None
) -> None:
    response = tenant.analyst.send(
        "POST", f"{API}/datasets", content=body, params={"name": name}, headers={"Content-Type": "text/csv"}
    )
    problem = assert_problem(response, 422)
    if where is not None:
        assert where in problem["detail"], problem
    record_attack(record, "malformed-file", name, response)
    assert tenant.viewer.send("GET", f"{API}/datasets").json()["items"] == []


def test_huge_integers_are_422_never_500(tenant: ProvisionedTenant, record: Recorder) -> None:
    detector = tenant.analyst.detectors.create(name="numbers", algorithm="ecod")
    dataset = tenant.analyst.datasets.upload(b"a\n1\n2\n", name="numbers")
    for n, big in enumerate((2**63, 10**30, -(2**63) - 1)):
        for method, path, kwargs in (
            ("GET", f"/detectors/{detector['id']}/versions/{big}", {}),
            ("POST", f"/detectors/{detector['id']}/detect", {"params": {"version": big}, "json": {"records": [{}]}}),
            ("POST", f"/detectors/{detector['id']}/detect", {"json": {"records": [{"a": 1}], "version": big}}),
            ("GET", f"/datasets/{dataset['id']}/rows", {"params": {"offset": big}}),
            ("GET", f"/datasets/{dataset['id']}/profile", {"params": {"version": big}}),
        ):
            response = tenant.analyst.send(method, API + path, **kwargs)
            assert_problem(response, 422)
        record_attack(record, "huge-integers", f"set-{n}", response)


def test_problems_never_name_the_servers_files(tenant: ProvisionedTenant, target: Target, record: Recorder) -> None:
    for name, body, media in (
        ("parquet", b"PAR1 not really parquet PAR1", PARQUET),
        ("arrow", b"ARROW1\x00\x00 not really arrow ARROW1", "application/vnd.apache.arrow.file"),
    ):
        response = tenant.analyst.send(
            "POST", f"{API}/datasets", content=body, params={"name": name}, headers={"Content-Type": media}
        )
        assert_problem(response, 422)
        leaks = [s for s in ("staging", "/tmp/", "/var/", "/home/", target.data_dir or "\0") if s in response.text]
        assert not leaks, f"the problem names server files ({leaks}): {response.text[:300]}"
        record_attack(record, "information-leak", f"malformed-{name}", response)


# -- the memory bound --------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.alone  # the server's resident memory is the measure: other tests' work beside it would count too
def test_server_memory_stays_within_its_bound_across_hostile_input(
    tenant: ProvisionedTenant,
    target: Target,
    labelled_data: LabelledData,
    validation_config: ValidationConfig,
    record: Recorder,
) -> None:
    """Every attack above again, back to back, while the server's resident memory is watched: its peak may not
    pass its warm baseline (taken after a training and a detection, so the model libraries are loaded) by more
    than the bound. A server that decodes a bomb before checking it blows through the bound by gigabytes."""
    detector_id = trained_detector(tenant, labelled_data, validation_config)
    tenant.analyst.detectors.detect(detector_id, records=[dict.fromkeys(labelled_data.features, 1)])
    analyst, admin = tenant.analyst, tenant.admin
    url = f"{API}/detectors/{detector_id}/detect"
    built = {
        "gzip": gzip_bomb(),
        "rows": parquet_rows_bomb(),
        "text": parquet_text_bomb(),
        "arrow": arrow_bomb(60_000_000, ["x"]),
        "json": json_records_bomb(),
        # Under the JSON route's byte limit, but ~290 MB of Python objects if parsed.
        "inline-json": b'{"records": ' + json_records_bomb(9 * MIB) + b"}",
        "inline-parquet": parquet_rows_bomb(INLINE_BOMB_ROWS, width=len(labelled_data.features)),
        "inline-arrow": arrow_bomb(INLINE_BOMB_ROWS, labelled_data.features),
    }
    huge = b"x" * HUGE_BODY_BYTES
    payloads: list[tuple[str, Callable[[], httpx.Response]]] = [
        ("auth-28mb", lambda: analyst.send("POST", f"{API}/auth/token", content=huge, authenticated=False)),
        ("json-route-28mb", lambda: admin.send("POST", f"{API}/api-keys", content=huge)),
        (
            "gzip-csv",
            lambda: analyst.send(
                "POST",
                f"{API}/datasets",
                content=built["gzip"],
                headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
            ),
        ),
        (
            "parquet-rows",
            lambda: analyst.send("POST", f"{API}/datasets", content=built["rows"], headers={"Content-Type": PARQUET}),
        ),
        (
            "parquet-text",
            lambda: analyst.send("POST", f"{API}/datasets", content=built["text"], headers={"Content-Type": PARQUET}),
        ),
        (
            "arrow-zstd",
            lambda: analyst.send("POST", f"{API}/datasets", content=built["arrow"], headers={"Content-Type": ARROW}),
        ),
        (
            "json-records",
            lambda: analyst.send(
                "POST", f"{API}/datasets", content=built["json"], headers={"Content-Type": "application/json"}
            ),
        ),
        (
            "inline-json",
            lambda: analyst.send(
                "POST", url, content=built["inline-json"], headers={"Content-Type": "application/json"}
            ),
        ),
        (
            "inline-parquet",
            lambda: analyst.send("POST", url, content=built["inline-parquet"], headers={"Content-Type": PARQUET}),
        ),
        (
            "inline-arrow",
            lambda: analyst.send("POST", url, content=built["inline-arrow"], headers={"Content-Type": ARROW}),
        ),
    ]
    answers: dict[str, httpx.Response] = {}
    with PeakMemory(target) as watch:
        for name, send in payloads:
            answers[name] = send()
            record_attack(record, "memory-bound", name, answers[name])
    record("hostile input: warm baseline resident memory", watch.baseline_bytes / MIB, "MiB")
    record("hostile input: peak resident memory", watch.peak_bytes / MIB, "MiB")
    record("hostile input: peak over warm baseline", watch.growth_mib, "MiB")
    assert watch.growth_mib <= MEMORY_HEADROOM_MIB, (
        f"the server's resident memory rose {watch.growth_mib:.0f} MiB above its warm baseline "
        f"({watch.baseline_bytes / MIB:.0f} MiB) while refusing hostile input ({watch.source}); "
        f"the bound is {MEMORY_HEADROOM_MIB} MiB"
    )
    accepted = {name: r.status_code for name, r in answers.items() if not 400 <= r.status_code < 500}
    assert not accepted, f"hostile input was not refused: {accepted}"
