"""Contract fuzzing with Schemathesis: runs `schemathesis run` against a target's served OpenAPI document (in its own
process, with `vigil_validation.fuzz_hooks`) and reads what happened from its NDJSON event stream — every request
sent, every status received, every check that failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from vigil_validation import fuzz_hooks

# What the run checks on every response (schemathesis' names): no 5xx; each status, content type and body as the
# document says; a protected operation refuses a request without its credential; a deleted resource is gone
# (`use_after_free`) and a created one is there (`ensure_resource_availability`), along the document's links.
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
)
# Operations that would end the run's own credentials: logging out, ending sessions, changing the password, and the
# tenant's session policy (a one-second session lifetime). Each is covered by the security and contracts suites.
SELF_LOCKOUT = (
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/me/password"),
    ("DELETE", "/api/v1/auth/sessions/{session_id}"),
    ("PATCH", "/api/v1/tenant/security"),
)


@dataclass(frozen=True)
class FuzzOptions:
    base_url: str
    credentials: list[tuple[str, str]]
    max_examples: int
    workers: int = 1
    seed: int | None = None
    forwarded_for: str | None = None
    timeout_s: float = 900.0
    report_dir: Path | None = None


@dataclass
class Failure:
    check: str
    operation: str
    status: int | None
    message: str


@dataclass
class FuzzResult:
    returncode: int
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    operations: set[str] = field(default_factory=set)
    output: str = ""

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def failures_of(self, check: str) -> list[Failure]:
        return [f for f in self.failures if f.check == check]


def command(options: FuzzOptions, events: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{options.base_url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(options.max_examples),
        "--workers",
        str(options.workers),
        # The credentials come from the hooks (several admins in turn); an X-API-Key generated beside them would
        # only be refused as a second credential.
        "--generation-with-security-parameters",
        "false",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(events),
    ]
    for method, path in SELF_LOCKOUT:
        cmd += ["--exclude-name", f"{method} {path}"]
    if options.seed is not None:
        cmd += ["--seed", str(options.seed)]
    return cmd


def run(options: FuzzOptions) -> FuzzResult:
    report_dir = options.report_dir or Path(tempfile.mkdtemp(prefix="vigil-fuzz-"))
    report_dir.mkdir(parents=True, exist_ok=True)
    events = report_dir / "schemathesis-events.ndjson"
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": fuzz_hooks.__name__,
        fuzz_hooks.BASE_URL_ENV: options.base_url,
        fuzz_hooks.CREDENTIALS_ENV: json.dumps(options.credentials),
    }
    if options.forwarded_for:
        env[fuzz_hooks.FORWARDED_FOR_ENV] = options.forwarded_for
    completed = subprocess.run(  # noqa: S603
        command(options, events),
        env=env,
        capture_output=True,
        text=True,
        timeout=options.timeout_s,
        check=False,
        cwd=report_dir,  # schemathesis keeps a cache of what it found in the working directory
    )
    (report_dir / "schemathesis-output.txt").write_text(completed.stdout + completed.stderr, encoding="utf-8")
    result = parse_events(events) if events.exists() else FuzzResult(returncode=completed.returncode)
    result.returncode = completed.returncode
    result.output = completed.stdout + completed.stderr
    return result


def parse_events(path: Path) -> FuzzResult:
    """Counts requests, statuses and failed checks in schemathesis' NDJSON events."""
    result = FuzzResult(returncode=0)
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if "NonFatalError" in event:
            error = event["NonFatalError"]
            detail = (error.get("value") or {}).get("message") or error.get("info") or error
            result.errors.append(f"{error.get('label', '')}: {detail}")
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished.get("recorder", {})
        interactions = recorder.get("interactions", {})
        for interaction in interactions.values():
            response = interaction.get("response") or {}
            result.requests += 1
            if response.get("status_code") is not None:
                result.statuses[int(response["status_code"])] += 1
        for case_id, checks in recorder.get("checks", {}).items():
            case = recorder.get("cases", {}).get(case_id, {}).get("value", {})
            operation = case.get("operation", {}).get("label") or recorder.get("label", "?")
            result.operations.add(str(recorder.get("label", "?")))
            for check in checks:
                if check.get("status") != "failure":
                    continue
                response = (interactions.get(case_id) or {}).get("response") or {}
                failure = (check.get("failure_info") or {}).get("failure") or {}
                message = f"{failure.get('title', '')}: {failure.get('message', '')}".strip(": ")
                result.failures.append(
                    Failure(
                        check=str(check.get("name")),
                        operation=str(operation),
                        status=response.get("status_code"),
                        message=message[:500],
                    )
                )
    return result
