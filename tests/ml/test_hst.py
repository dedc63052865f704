"""Half-space trees as arrays (`ml.hst`) against River's own: the same scores, flags, thresholds and drifts, bit for
bit, as `OnlineModel.process` gives with River's objects event by event (the loop every other detector runs) — over
tree shapes, window sizes (1 included), batch sizes (and batches straddling window ends), thresholds, protection,
warm-up, scaling and constant features; and snapshots (taken mid-window, or written with River's trees inside by
servers before `ml.hst`) that carry on exactly."""

from __future__ import annotations

import hashlib
import hmac
import pickle
import random
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from river import anomaly, preprocessing

from vigil import ml
from vigil.ml import online, provenance
from vigil.ml.hst import HalfSpaceForest

KEY = b"hst-conformance"
FEATURES = ["wide", "gauss", "flat", "steps"]


def stream(n: int, seed: int) -> list[dict[str, float]]:
    """Events with a feature of a large scale, a Gaussian one, a constant one (max == min: River scales it to 0),
    one of few distinct values (ties at the extremes), ~2% outliers, and a shift of the mean half-way."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = {
            "wide": float(rng.uniform(-1e6, 1e6)),
            "gauss": float(rng.normal(3.0 if i > n // 2 else 0.0, 1.0)),
            "flat": 2.5,
            "steps": float(rng.integers(0, 4)),
        }
        if rng.random() < 0.02:
            x["gauss"] = float(rng.choice([-1, 1]) * rng.uniform(6, 9))
            x["wide"] = float(rng.uniform(0.9e6, 1e6))
        rows.append(x)
    return rows


def in_batches(rows: list[dict[str, float]], sizes: str, seed: int) -> Iterator[list[dict[str, float]]]:
    rng = random.Random(seed)
    start = 0
    while start < len(rows):
        size = rng.randint(1, 300) if sizes == "random" else int(sizes)
        yield rows[start : start + size]
        start += size


def river_detector(params: dict[str, Any], scaling: str) -> Any:
    detector = anomaly.HalfSpaceTrees(**params)
    return preprocessing.MinMaxScaler() | detector if scaling == "minmax" else detector


def pair(
    params: dict[str, Any], scaling: str, threshold: ml.ThresholdSpec, warmup: int
) -> tuple[ml.OnlineModel, ml.OnlineModel]:
    """(ours: arrays; River's: the same model whose detector is River's own, run event by event by `process`)."""
    made = [
        ml.OnlineModel.create(
            algorithm="hst", parameters=params, features=FEATURES, threshold=threshold, warmup=warmup, scaling=scaling
        )
        for _ in range(2)
    ]
    ours, river = made
    assert isinstance(ours.detector, HalfSpaceForest)
    river.detector = river_detector(params, scaling)
    return ours, river


def run(model: ml.OnlineModel, batches: Iterator[list[dict[str, float]]]) -> list[Any]:
    """Per event: (score, flag, threshold if flagged, drift if detected), over all batches."""
    out: list[Any] = []
    for batch in batches:
        step = model.process(batch)
        drifts = dict(step.drifts)
        out += [
            (score, flag, step.thresholds.get(i), drifts.get(i))
            for i, (score, flag) in enumerate(zip(step.scores, step.flags, strict=True))
        ]
    return out


def assert_same_state(ours: ml.OnlineModel, river: ml.OnlineModel) -> None:
    """The forest holds what River's model holds: trees, both masses, window position, scaler."""
    expected = HalfSpaceForest.from_river(river.detector, FEATURES)
    forest = ours.detector
    assert isinstance(forest, HalfSpaceForest)
    assert expected is not None
    for name in ("feature", "threshold", "r_mass", "l_mass", "low", "high"):
        assert np.array_equal(getattr(forest, name), getattr(expected, name)), name
    assert (forest.counter, forest.first_window, forest.built) == (expected.counter, expected.first_window, True)
    assert ours.seen == river.seen
    if ours.quantile is not None:
        assert ours.quantile.get() == river.quantile.get()


THRESHOLDS = {
    "quantile-protect": ml.ThresholdSpec(kind="quantile", q=0.95, protect=True),
    "quantile-open": ml.ThresholdSpec(kind="quantile", q=0.99, protect=False),
    "fixed-protect": ml.ThresholdSpec(kind="fixed", value=0.62, protect=True),
    "fixed-open": ml.ThresholdSpec(kind="fixed", value=0.62, protect=False),
}
# (n_trees, height, window_size): River's default, windows of 1, 2 and 3 (a window end every event or two), a
# window that does not divide any batch size, a stump.
SHAPES = [(10, 8, 250), (3, 4, 1), (4, 3, 2), (5, 2, 3), (25, 6, 40), (1, 1, 7)]


@pytest.mark.parametrize("scaling", ["minmax", "none"])
@pytest.mark.parametrize("threshold", list(THRESHOLDS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_scores_flags_and_drifts_are_rivers_bit_for_bit(
    shape: tuple[int, int, int], threshold: str, scaling: str
) -> None:
    n_trees, height, window = shape
    seed = zlib.crc32(repr((shape, threshold, scaling)).encode()) % 1000
    params = {"n_trees": n_trees, "height": height, "window_size": window, "seed": seed}
    warmup = [0, 25, 300][seed % 3]
    rows = stream(1100, seed)
    if scaling == "none":  # River's default limits are [0, 1]: a few values out of them, most inside
        rows = [{f: v / 1e6 if f == "wide" else v / 8 for f, v in x.items()} for x in rows]
    river = pair(params, scaling, THRESHOLDS[threshold], warmup)[1]
    expected = run(river, in_batches(rows, "1", 0))
    for sizes in ("1", "7", "100", "1000", "random"):
        ours = pair(params, scaling, THRESHOLDS[threshold], warmup)[0]
        assert run(ours, in_batches(rows, sizes, seed)) == expected, sizes
        assert_same_state(ours, river)
    assert height == 1 or len({score for score, *_ in expected}) > 2  # the trees scored: not only zeros
    if threshold.startswith("quantile"):
        assert any(flag for _, flag, *_ in expected)


def test_a_threshold_everything_reaches_stops_learning_at_once() -> None:
    """A fixed threshold of 0 flags every event after warm-up (first-window scores included): protected, nothing
    is learnt from then on, so the trees may never be built; every event is a restart of the walk."""
    params = {"n_trees": 3, "height": 3, "window_size": 5, "seed": 1}
    rows = stream(200, 4)
    for warmup in (0, 3, 12):
        ours, river = pair(params, "minmax", ml.ThresholdSpec(kind="fixed", value=0.0), warmup)
        assert run(ours, in_batches(rows, "50", 0)) == run(river, in_batches(rows, "1", 0))
        assert ours.detector.built == bool(warmup)  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(12))
def test_random_shapes_and_batches(seed: int) -> None:
    rng = random.Random(seed)
    height = rng.randint(1, 9)
    params = {"n_trees": rng.randint(1, 15), "height": height, "window_size": rng.choice([1, 2, 3, 17, 64, 250])}
    params["seed"] = seed
    spec = ml.ThresholdSpec(kind="quantile", q=rng.choice([0.5, 0.9, 0.99]), protect=rng.random() < 0.7)
    ours, river = pair(params, "minmax", spec, rng.choice([0, 10, 100]))
    rows = stream(900, seed + 100)
    assert run(ours, in_batches(rows, "random", seed)) == run(river, in_batches(rows, "1", 0))
    assert_same_state(ours, river)


def _format_1(model: ml.OnlineModel) -> bytes:
    """A snapshot as format 1 wrote it (a plain pickle)."""
    payload = provenance.with_trailer(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    return online.STATE_MAGIC + b"\x01" + hmac.new(KEY, payload, hashlib.sha256).digest() + payload


@pytest.mark.parametrize("cut", [0, 3, 40, 41, 250, 333, 500])
def test_a_snapshot_carries_on_exactly_wherever_it_was_taken(cut: int) -> None:
    """Taken before anything was learnt, in the first window, at a window's end, mid-window: the restored model,
    and one restored from River's trees as servers before `ml.hst` wrote them (formats 1 and 2), score what River
    scores after it."""
    params = {"n_trees": 8, "height": 6, "window_size": 41, "seed": 5}
    spec = ml.ThresholdSpec(kind="quantile", q=0.95)
    rows = stream(700, 9)
    ours, river = pair(params, "minmax", spec, warmup=30)
    run(ours, iter([rows[:cut]] if cut else []))
    run(river, iter([rows[:cut]] if cut else []))
    old_state = ml.dump_state(river, key=KEY)  # River's objects inside: what a server before `ml.hst` wrote
    assert old_state[len(online.STATE_MAGIC)] == 2
    new_state = ml.dump_state(ours, key=KEY)
    assert new_state[len(online.STATE_MAGIC)] == online._STATE_FORMAT
    carried = [ml.load_state(state, key=KEY) for state in (new_state, old_state, _format_1(river))]
    carried.append(ours.compacted())
    expected = run(river, in_batches(rows[cut:], "1", 0))
    for model in carried:
        assert isinstance(model.detector, HalfSpaceForest)
        assert run(model, in_batches(rows[cut:], "100", cut)) == expected
        assert_same_state(model, river)


def test_river_can_carry_on_from_the_arrays() -> None:
    """`to_river` gives River's model in the forest's state: River itself then scores as the forest does."""
    params = {"n_trees": 6, "height": 5, "window_size": 30, "seed": 8}
    spec = ml.ThresholdSpec(kind="quantile", q=0.9)
    rows = stream(400, 2)
    for scaling in ("minmax", "none"):
        ours = ml.OnlineModel.create(
            algorithm="hst", parameters=params, features=FEATURES, threshold=spec, scaling=scaling
        )
        done = 0
        for cut in (0, 10, 75):
            ours.process(rows[done:cut])
            done = cut
            forest = ours.detector
            assert isinstance(forest, HalfSpaceForest)
            river = pickle.loads(pickle.dumps(ours))
            river.detector = forest.to_river(seed=params["seed"])
            twin = pickle.loads(pickle.dumps(ours))
            assert run(river, in_batches(rows[cut:], "1", 0)) == run(twin, in_batches(rows[cut:], "64", 0))


def test_other_detectors_and_scalings_keep_rivers_objects() -> None:
    spec = ml.ThresholdSpec()
    standard = ml.OnlineModel.create(
        algorithm="hst", parameters={"seed": 1}, features=FEATURES, threshold=spec, scaling="standard"
    )
    loda = ml.OnlineModel.create(algorithm="online_loda", parameters={"seed": 1}, features=FEATURES, threshold=spec)
    rolling = preprocessing.MinMaxScaler(window_size=10) | anomaly.HalfSpaceTrees(seed=1)
    assert not isinstance(standard.detector, HalfSpaceForest)
    assert not isinstance(loda.detector, HalfSpaceForest)
    assert HalfSpaceForest.from_river(rolling, FEATURES) is None
    assert ml.dump_state(loda, key=KEY)[len(online.STATE_MAGIC)] == 2  # older servers still read these
