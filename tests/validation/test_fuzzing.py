"""The contracts suite's Schemathesis driver: the command it runs, and what it reads back from the NDJSON events
(shaped as schemathesis 4 writes them: a run against a route made to fail with a 500)."""

from __future__ import annotations

import json
from pathlib import Path

from vigil_validation import fuzzing


def test_the_command_runs_every_required_check_and_spares_the_runs_credentials(tmp_path: Path) -> None:
    options = fuzzing.FuzzOptions(base_url="http://127.0.0.1:1", credentials=[("a@b.c", "pw")], max_examples=7)
    command = fuzzing.command(options, tmp_path / "events.ndjson")
    checks = command[command.index("--checks") + 1].split(",")
    assert set(checks) == {
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "content_type_conformance",
        "ignored_auth",
        "use_after_free",
        "ensure_resource_availability",
    }
    assert command[command.index("--max-examples") + 1] == "7"
    excluded = [command[i + 1] for i, arg in enumerate(command) if arg == "--exclude-name"]
    assert "POST /api/v1/auth/logout" in excluded
    assert "PATCH /api/v1/tenant/security" in excluded


def _scenario(status: int, checks: list[dict[str, object]]) -> dict[str, object]:
    return {
        "ScenarioFinished": {
            "recorder": {
                "label": "GET /api/v1/algorithms",
                "cases": {"c1": {"value": {"operation": {"label": "GET /api/v1/algorithms"}}}},
                "interactions": {"c1": {"request": {"method": "GET"}, "response": {"status_code": status}}},
                "checks": {"c1": checks},
            }
        }
    }


def test_requests_statuses_and_failed_checks_are_counted(tmp_path: Path) -> None:
    server_error = {
        "name": "not_a_server_error",
        "status": "failure",
        "failure_info": {"failure": {"type": "ServerError", "code": "ST101", "title": "Server error", "message": ""}},
    }
    passed = {"name": "status_code_conformance", "status": "success"}
    events = tmp_path / "events.ndjson"
    lines = [
        {"EngineStarted": {}},
        _scenario(500, [server_error, passed]),
        _scenario(200, [passed]),
        {"NonFatalError": {"label": "Stateful tests", "value": {"message": "no links"}}},
    ]
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = fuzzing.parse_events(events)
    assert result.requests == 2
    assert result.statuses == {500: 1, 200: 1}
    assert result.server_errors == 1
    assert [(f.check, f.operation, f.status, f.message) for f in result.failures] == [
        ("not_a_server_error", "GET /api/v1/algorithms", 500, "Server error")
    ]
    assert result.errors == ["Stateful tests: no links"]
