"""Every online catalog entry through the same checks: scores equal River's own loop (seeded), thresholds equal
River's filters, warm-up, exact snapshot/restore, signed state, planted anomalies found, drift reported."""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import math
import pickle
import random
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest
from river import anomaly, preprocessing
from sklearn.metrics import roc_auc_score

from tests.ml.test_artifacts import retired_pickle
from vigil import ml
from vigil.ml import online, provenance
from vigil.ml.online_catalog import ONLINE_CATALOG, OnlineEntry

KEY = b"online-conformance"
# River's one-class SVM is linear (a hyperplane learnt by SGD): it cannot enclose anomalies on every side, so it
# gets anomalies on one side and a lower floor.
AUC_FLOOR = {"online_svm": 0.6}
ALGORITHMS = list(ONLINE_CATALOG)
FEATURES = ["a", "b", "c"]


def events(
    n: int, *, features: list[str], seed: int = 0, outliers: int = 0, one_sided: bool = False
) -> tuple[list[dict[str, float]], list[int]]:
    """Gaussian events, with `outliers` of them (after the first quarter) 6 to 9 units out on every axis."""
    rng = random.Random(seed)
    rows = [{f: rng.gauss(0.0, 1.0) for f in features} for _ in range(n)]
    labels = [0] * n
    for index in rng.sample(range(n // 4, n), outliers):
        rows[index] = {f: (1 if one_sided else rng.choice([-1, 1])) * rng.uniform(6, 9) for f in features}
        labels[index] = 1
    return rows, labels


def features_of(entry: OnlineEntry) -> list[str]:
    return FEATURES[:1] if entry.univariate else FEATURES


def params_of(entry: OnlineEntry) -> dict[str, Any]:
    params = ml.validate_online_parameters(entry.name, {"seed": 3} if "seed" in [p.name for p in entry.params] else {})
    if entry.name == "hst":
        params["window_size"] = 50
    if entry.name == "gaussian":
        params["grace_period"] = 10
    return params


def river_model(entry: OnlineEntry, params: dict[str, Any]) -> Any:
    """The same detector built from River directly, as a River user would."""
    detector = getattr(anomaly, entry.river_class.rsplit(".", 1)[1])(**params)
    if entry.scaling == "minmax":
        return preprocessing.MinMaxScaler() | detector
    if entry.scaling == "standard":
        return preprocessing.StandardScaler() | detector
    return detector


def river_args(entry: OnlineEntry, x: dict[str, float]) -> tuple[Any, ...]:
    return (None, x[FEATURES[0]]) if entry.univariate else (x,)


def ours(entry: OnlineEntry, params: dict[str, Any], threshold: ml.ThresholdSpec, warmup: int = 0) -> ml.OnlineModel:
    return ml.OnlineModel.create(
        algorithm=entry.name, parameters=params, features=features_of(entry), threshold=threshold, warmup=warmup
    )


def clean(score: float) -> float:
    return float(score) if math.isfinite(score) else 0.0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_scores_are_rivers_own(algorithm: str) -> None:
    entry = ONLINE_CATALOG[algorithm]
    params = params_of(entry)
    rows, _ = events(300, features=features_of(entry))
    model = ours(entry, params, ml.ThresholdSpec(kind="quantile", q=0.9, protect=False))
    reference = river_model(entry, params)
    expected = []
    for x in rows:
        expected.append(clean(reference.score_one(*river_args(entry, x))))
        reference.learn_one(*river_args(entry, x))
    # In several batches: batching must change nothing.
    got = model.process(rows[:7]).scores + model.process(rows[7:150]).scores + model.process(rows[150:]).scores
    assert got == expected
    assert model.seen == 300


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_quantile_threshold_is_rivers_quantile_filter(algorithm: str) -> None:
    entry = ONLINE_CATALOG[algorithm]
    params = params_of(entry)
    rows, _ = events(300, features=features_of(entry), outliers=10)
    model = ours(entry, params, ml.ThresholdSpec(kind="quantile", q=0.95, protect=True))
    reference = anomaly.QuantileFilter(river_model(entry, params), q=0.95, protect_anomaly_detector=True)
    expected_scores, expected_flags = [], []
    for x in rows:
        score = reference.score_one(*river_args(entry, x))
        expected_scores.append(clean(score))
        expected_flags.append(bool(reference.classify(score)))
        reference.learn_one(*river_args(entry, x))
    step = model.process(rows)
    assert step.scores == expected_scores
    assert step.flags == expected_flags
    assert model.current_threshold == pytest.approx(reference.quantile.get())


def test_fixed_threshold_is_rivers_threshold_filter() -> None:
    entry = ONLINE_CATALOG["hst"]
    params = params_of(entry)
    rows, _ = events(400, features=FEATURES, outliers=10)
    model = ours(entry, params, ml.ThresholdSpec(kind="fixed", value=0.7, protect=True))
    reference = anomaly.ThresholdFilter(river_model(entry, params), threshold=0.7, protect_anomaly_detector=True)
    expected = []
    for x in rows:
        score = reference.score_one(x)
        expected.append((score, bool(reference.classify(score))))
        reference.learn_one(x)
    step = model.process(rows)
    assert list(zip(step.scores, step.flags, strict=True)) == expected
    assert any(step.flags)


def test_warmup_events_are_learnt_never_flagged() -> None:
    entry = ONLINE_CATALOG["hst"]
    params = params_of(entry)
    rows, _ = events(200, features=FEATURES)
    rows[10] = dict.fromkeys(FEATURES, 50.0)  # would be flagged by a fixed threshold of 0 at once
    warm = ours(entry, params, ml.ThresholdSpec(kind="fixed", value=0.0, protect=True), warmup=100)
    step = warm.process(rows)
    assert not any(step.flags[:100])
    assert all(step.flags[100:])
    # During warm-up everything was learnt: the same as a model that never protects, for those events.
    unprotected = ours(entry, params, ml.ThresholdSpec(kind="fixed", value=0.0, protect=False))
    assert unprotected.process(rows[:101]).scores == step.scores[:101]


def _restored(model: ml.OnlineModel) -> ml.OnlineModel:
    return ml.load_state(ml.dump_state(model, key=KEY), key=KEY)


def _compacted(model: ml.OnlineModel) -> ml.OnlineModel:
    """As a stream does after each snapshot: the snapshot is taken, then the live model swapped for its copy."""
    ml.dump_state(model, key=KEY)
    return model.compacted()


@pytest.mark.parametrize("carry_on", [_restored, _compacted], ids=["restored", "compacted"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_carried_on_model_continues_exactly(
    algorithm: str, carry_on: Callable[[ml.OnlineModel], ml.OnlineModel]
) -> None:
    """A model restored from its snapshot, or swapped for its compacted copy, is the same model from there on."""
    entry = ONLINE_CATALOG[algorithm]
    params = params_of(entry)
    rows, _ = events(240, features=features_of(entry), outliers=5)
    spec = ml.ThresholdSpec(kind="quantile", q=0.95)
    uninterrupted = ours(entry, params, spec, warmup=20)
    whole = uninterrupted.process(rows)
    first = ours(entry, params, spec, warmup=20)
    head = first.process(rows[:111])
    carried = carry_on(first)
    tail = carried.process(rows[111:])
    assert head.scores + tail.scores == whole.scores
    assert head.flags + tail.flags == whole.flags
    assert carried.seen == 240
    assert _restored(carried).process(rows[:50]).scores == uninterrupted.process(rows[:50]).scores


def _reads_through_a_dict(obj: object) -> bool:
    """Whether CPython holds `obj`'s attributes in a dictionary (the slow reads) rather than inline; asked through
    the garbage collector, since looking at `obj.__dict__` would itself make the dictionary."""
    return any(type(ref) is dict for ref in gc.get_referents(obj))


@pytest.mark.skipif(sys.implementation.name != "cpython" or sys.version_info < (3, 11), reason="CPython's layout")
def test_snapshots_and_loads_leave_a_model_with_inline_attributes() -> None:
    entry = ONLINE_CATALOG["hst"]
    rows, _ = events(120, features=FEATURES)
    model = ours(entry, params_of(entry), ml.ThresholdSpec())
    model.process(rows)
    # The objects read event by event (River's quantile) or batch by batch (the half-space trees' arrays).
    read = [model.quantile, model.detector]
    assert not any(_reads_through_a_dict(obj) for obj in read)
    state = ml.dump_state(model, key=KEY)
    assert all(_reads_through_a_dict(obj) for obj in read)  # what pickling does to the live model: why `compacted`
    for fast in (model.compacted(), ml.load_state(state, key=KEY), ml.load_state(_plain_state(model), key=KEY)):
        assert not _reads_through_a_dict(fast.quantile)
        assert not _reads_through_a_dict(fast.detector)


def _plain_state(model: ml.OnlineModel) -> bytes:
    """A snapshot as format 1 wrote it (a plain pickle), as older servers left in the database."""
    payload = provenance.with_trailer(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    return online.STATE_MAGIC + b"\x01" + hmac.new(KEY, payload, hashlib.sha256).digest() + payload


def test_a_snapshot_of_the_first_format_still_loads_and_continues_exactly() -> None:
    entry = ONLINE_CATALOG["hst"]
    rows, _ = events(240, features=FEATURES, outliers=5)
    spec = ml.ThresholdSpec(kind="quantile", q=0.95)
    uninterrupted, first = ours(entry, params_of(entry), spec), ours(entry, params_of(entry), spec)
    whole = uninterrupted.process(rows)
    head = first.process(rows[:120])
    assert head.scores + ml.load_state(_plain_state(first), key=KEY).process(rows[120:]).scores == whole.scores


def test_tampered_or_foreign_state_is_refused() -> None:
    model = ours(ONLINE_CATALOG["hst"], params_of(ONLINE_CATALOG["hst"]), ml.ThresholdSpec())
    model.process(events(60, features=FEATURES)[0])
    data = bytearray(ml.dump_state(model, key=KEY))
    data[-5] ^= 0x01
    with pytest.raises(ml.ArtifactTampered):
        ml.load_state(bytes(data), key=KEY)
    data[-5] ^= 0x01
    with pytest.raises(ml.ArtifactTampered):
        ml.load_state(bytes(data), key=b"someone else")
    assert ml.load_state(bytes(data), key=KEY).seen == 60


def test_a_genuine_state_of_other_library_versions_is_incompatible_not_tampered() -> None:
    written = {**provenance.library_versions(), "river": "0.1.0"}
    body = json.dumps(written).encode()
    payload = retired_pickle() + provenance.TRAILER_MAGIC + body + len(body).to_bytes(4, "big")
    data = online.STATE_MAGIC + b"\x01" + hmac.new(KEY, payload, hashlib.sha256).digest() + payload
    with pytest.raises(ml.ArtifactIncompatible) as caught:
        ml.load_state(data, key=KEY)
    assert not isinstance(caught.value, ml.ArtifactTampered)
    assert caught.value.written_by == {"river": "0.1.0"}
    newer = bytearray(data)
    newer[len(online.STATE_MAGIC)] = online._STATE_FORMAT + 1
    with pytest.raises(ml.ArtifactIncompatible, match=f"state format {online._STATE_FORMAT + 1}"):
        ml.load_state(bytes(newer), key=KEY)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_finds_planted_anomalies(algorithm: str) -> None:
    entry = ONLINE_CATALOG[algorithm]
    params = ml.validate_online_parameters(algorithm, {"seed": 1} if "seed" in [p.name for p in entry.params] else {})
    one_sided = algorithm in AUC_FLOOR
    # River's LOF compares each event with every one it learnt: a shorter stream keeps it quick.
    n = 700 if algorithm == "online_lof" else 1500
    rows, labels = events(n, features=features_of(entry), outliers=n // 50, seed=5, one_sided=one_sided)
    model = ours(entry, params, ml.ThresholdSpec(kind="quantile", q=0.98), warmup=250)
    scores = model.process(rows).scores
    assert roc_auc_score(labels[300:], scores[300:]) >= AUC_FLOOR.get(algorithm, 0.9)


def test_drift_in_the_score_stream_is_reported() -> None:
    entry = ONLINE_CATALOG["hst"]
    params = ml.validate_online_parameters("hst", {"seed": 2})
    before, _ = events(1500, features=FEATURES, seed=1)
    after = [{f: v + 4.0 for f, v in x.items()} for x in events(1500, features=FEATURES, seed=2)[0]]
    model = ours(entry, params, ml.ThresholdSpec(kind="quantile", q=0.99), warmup=250)
    quiet = model.process(before)
    # Half-space trees' scores move a little each time a window pivots; ADWIN may notice, but seldom.
    assert len(quiet.drifts) <= 2
    shifted = model.process(after)
    assert shifted.drifts, "a shift of four standard deviations went unnoticed"
    first, info = shifted.drifts[0]
    assert first < 500
    assert info["width"] > 0


def test_parameters_and_features_are_checked() -> None:
    with pytest.raises(ml.InvalidParameters):
        ml.validate_online_parameters("hst", {"n_trees": 0, "bogus": 1})
    with pytest.raises(ml.UnknownAlgorithm, match="online"):
        ml.get_online_entry("iforest")
    with pytest.raises(ml.UnknownAlgorithm, match="stream"):
        ml.get_entry("hst")
    with pytest.raises(ml.InvalidFeatures, match="exactly one"):
        ml.OnlineModel.create(
            algorithm="sad", parameters={}, features=["a", "b"], threshold=ml.ThresholdSpec(), warmup=0
        )
    assert {e["name"] for e in ml.describe_catalog() if e["family"] == "online"} == set(ONLINE_CATALOG)


def test_half_space_trees_are_bounded_in_size_not_only_per_parameter() -> None:
    """Trees are built whole on a stream's first event, inside its request: the largest forest each bound allows
    alone (200 trees of height 20, 400M nodes) would take tens of GB. The product is refused before anything is
    built; the default and the largest forests of a few shapes are accepted."""
    with pytest.raises(ml.InvalidParameters) as refused:
        ml.validate_online_parameters("hst", {"n_trees": 200, "height": 20})
    assert refused.value.errors[0]["loc"] == ["body", "parameters", "height"]
    with pytest.raises(ml.InvalidParameters):
        ml.validate_online_parameters("hst", {"n_trees": 33, "height": 12})  # one tree over the bound
    for n_trees, height in ((10, 8), (32, 12), (4, 15)):
        ml.validate_online_parameters("hst", {"n_trees": n_trees, "height": height})


def test_a_batch_model_scores_a_stream_without_learning() -> None:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(rng.normal(size=(300, 3)), schema=FEATURES)
    fitted = ml.fit_detector(
        frame,
        algorithm="iforest",
        parameters={"random_state": 0},
        contamination=0.05,
        features=FEATURES,
        preprocessing=ml.Preprocessing(),
    )
    rows = [{f: float(v) for f, v in zip(FEATURES, row, strict=True)} for row in rng.normal(size=(50, 3))]
    model = ml.OnlineModel.for_batch_model(fitted, threshold=ml.ThresholdSpec(kind="model"))
    step = model.process(rows)
    expected = fitted.score(pl.DataFrame(rows))
    assert step.scores == expected.tolist()
    assert step.flags == (expected > fitted.threshold).tolist()
    restored = ml.load_state(ml.dump_state(model, key=KEY), key=KEY, scorer=fitted)
    assert restored.process(rows).scores == step.scores  # no learning: the same events, the same scores
