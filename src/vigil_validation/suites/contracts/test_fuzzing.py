"""Schemathesis against the served OpenAPI document, as a tenant's admins: thousands of generated requests (valid
and invalid, single and chained along the document's links), and every response must be what the document says —
no server error, no undocumented status, content type or body, no operation that ignores missing credentials, no
resource that outlives its deletion or is missing after its creation."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from vigil.client import VigilClient
from vigil_validation import fuzzing, handover
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant, Recorder
from vigil_validation.targets import Target


def _report_dir() -> Path | None:
    summary = handover.summary_path_from_env()
    return Path(summary).parent / "schemathesis" if summary else None


@pytest.mark.slow
# The run is bounded by `contracts.fuzz_timeout_s` (scaled with --fuzz-examples), not by the per-test timeout.
@pytest.mark.timeout(0)
def test_fuzzing_finds_no_server_error_and_no_contract_violation(
    target: Target,
    admin: VigilClient,
    tenant_factory: Callable[[], ProvisionedTenant],
    validation_config: ValidationConfig,
    record: Recorder,
) -> None:
    settings = validation_config.contracts
    password = validation_config.security.password
    tenant = tenant_factory()
    credentials = [(tenant.emails["admin"], password)]
    for _ in range(settings.fuzz_admins - 1):
        email = f"fuzz-admin-{uuid.uuid4().hex[:10]}@validation.example.com"
        admin.create_user(email, password, role="admin", tenant_id=tenant.id)
        credentials.append((email, password))
    result = fuzzing.run(
        fuzzing.FuzzOptions(
            base_url=target.url,
            credentials=credentials,
            max_examples=settings.fuzz_examples,
            seed=settings.fuzz_seed,
            # An address of the run's own: per-address limits and login throttles stay away from other tests.
            forwarded_for=f"198.51.100.{uuid.uuid4().int % 250 + 1}",
            # The bound is for the default 10 examples; more examples, proportionally more time.
            timeout_s=settings.fuzz_timeout_s * max(1.0, settings.fuzz_examples / 10),
            report_dir=_report_dir(),
        )
    )
    record("fuzz requests", result.requests)
    record("fuzz operations", len(result.operations))
    record("fuzz server errors", result.server_errors)
    record("fuzz failed checks", len(result.failures))
    record("fuzz rate-limited answers", result.statuses.get(429, 0))
    failures = Counter(f"{f.check}: {f.operation} → {f.status}: {f.message[:160]}" for f in result.failures)
    listing = "\n".join(f"{count}× {text}" for text, count in failures.most_common(30))
    assert result.server_errors == 0, f"{result.server_errors} server errors\n{listing}\n{result.output[-4000:]}"
    assert not result.failures, f"{len(result.failures)} failed checks:\n{listing}\n{result.output[-4000:]}"
    assert not result.errors, f"schemathesis could not test everything: {result.errors}"
    assert result.returncode == 0, result.output[-4000:]
    assert result.requests >= settings.fuzz_min_requests, (
        f"only {result.requests} requests (at least {settings.fuzz_min_requests} wanted): {result.output[-2000:]}"
    )
