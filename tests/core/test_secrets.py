"""Finding 13: the access-token, artifact and login-throttle keys are HKDF derivations of the one secret — separate
keys, none of them the secret's own bytes — and artifacts signed before the derivation still load."""

from __future__ import annotations

from pathlib import Path

import jwt
import polars as pl
import pytest

from tests.conftest import Tenant, make_settings
from vigil import ml
from vigil.app import create_app
from vigil.config import Settings
from vigil.core.secrets import ACCESS_TOKENS, ARTIFACTS, LOGIN_THROTTLE, derive_key, resolve_secret_key
from vigil.identity.dependencies import IdentityRuntime


def test_each_use_has_its_own_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    app = create_app(settings, run_workers=False)
    secret = resolve_secret_key(settings)
    identity: IdentityRuntime = app.state.identity
    keys = {identity.tokens.key, identity.key, app.state.context.artifact_key, secret}
    assert len(keys) == 4  # tokens, throttle, artifacts and the secret: four different byte strings
    assert identity.tokens.key == derive_key(secret, ACCESS_TOKENS)
    assert identity.key == derive_key(secret, LOGIN_THROTTLE)
    assert app.state.context.artifact_key == derive_key(secret, ARTIFACTS)


def test_access_tokens_are_signed_with_the_derived_key(tenant: Tenant, settings: Settings) -> None:
    token = tenant.viewer["Authorization"].removeprefix("Bearer ")
    secret = resolve_secret_key(settings)
    options = {"verify_aud": False, "verify_iss": False}
    jwt.decode(token, derive_key(secret, ACCESS_TOKENS), algorithms=["HS256"], options=options)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, secret, algorithms=["HS256"], options=options)


def test_artifacts_signed_with_the_secret_itself_still_load() -> None:
    frame = pl.DataFrame({"x": [0.0, 1.0, 2.0, 1.5, 30.0], "y": [1.0, 2.0, 1.0, 2.0, -20.0]})
    model = ml.fit_detector(
        frame,
        algorithm="copod",
        parameters={},
        contamination=0.2,
        features=["x", "y"],
        preprocessing=ml.Preprocessing(),
    )
    secret = b"s" * 48
    derived = derive_key(secret, ARTIFACTS)
    legacy = ml.dump_artifact(model, key=secret)
    assert ml.load_artifact(legacy, key=derived, also=(secret,)).algorithm == "copod"
    with pytest.raises(ml.ArtifactTampered):
        ml.load_artifact(legacy, key=derived)
    assert ml.load_artifact(ml.dump_artifact(model, key=derived), key=derived).algorithm == "copod"
