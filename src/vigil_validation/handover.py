"""How the runner hands a run's target and configuration to the pytest session (and its xdist workers):
environment variables, inherited by every process pytest starts."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from vigil_validation.config import ValidationConfig
from vigil_validation.targets import Target

TARGET_ENV = "VIGIL_VALIDATION_TARGET"
CONFIG_ENV = "VIGIL_VALIDATION_CONFIG"
SUMMARY_ENV = "VIGIL_VALIDATION_SUMMARY"


def encode(target: Target, config: ValidationConfig, summary_path: str) -> dict[str, str]:
    return {
        TARGET_ENV: json.dumps(asdict(target)),
        CONFIG_ENV: config.model_dump_json(),
        SUMMARY_ENV: summary_path,
    }


class NoTarget(RuntimeError):
    """The session was not started by the runner (`vigil validate …`), so it has nothing to test."""


def target_from_env() -> Target:
    raw = os.environ.get(TARGET_ENV)
    if not raw:
        raise NoTarget(f"{TARGET_ENV} is not set: run the suite with `vigil validate …`, which starts a target")
    return Target(**json.loads(raw))


def config_from_env() -> ValidationConfig:
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise NoTarget(f"{CONFIG_ENV} is not set: run the suite with `vigil validate …`")
    return ValidationConfig.model_validate_json(raw)


def summary_path_from_env() -> str | None:
    return os.environ.get(SUMMARY_ENV)
