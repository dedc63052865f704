"""Online detection (River): the catalog's `family: "online"` entries, and the state a stream learns event by event.

An `OnlineModel` scores each event, decides whether it is an anomaly (a quantile of recent scores, a fixed score, or
a batch model's own threshold; never during warm-up), learns it (unless it was flagged and the detector is
protected, as River's `QuantileFilter` does), and watches the score stream for drift with ADWIN. Its whole state
pickles, so a stream can be snapshot and restored exactly; `dump_state` signs the bytes (HMAC-SHA256 under the
server's key) and `load_state` refuses anything it did not sign before unpickling. Half-space trees (the default
detector, alone or min-max scaled) run as numpy arrays a batch at a time (`ml.hst`), with River's scores bit for
bit; every other detector and scaling runs River's own objects event by event.

Examples
--------
>>> model = OnlineModel.create(
...     algorithm="hst", parameters={"seed": 7, "window_size": 50}, features=["x", "y"],
...     threshold=ThresholdSpec(kind="quantile", q=0.95), warmup=50,
... )
>>> step = model.process([{"x": 0.1 * (i % 7), "y": 0.2} for i in range(120)])
>>> len(step.scores), model.seen, any(step.flags[:50])
(120, 120, False)
>>> restored = load_state(dump_state(model, key=b"k"), key=b"k")
>>> restored.process([{"x": 0.3, "y": 0.2}]).scores == model.process([{"x": 0.3, "y": 0.2}]).scores
True
"""

from __future__ import annotations

import copyreg
import hashlib
import hmac
import importlib
import io
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from vigil.ml.errors import ArtifactIncompatible, ArtifactTampered, MLError
from vigil.ml.hst import HalfSpaceForest
from vigil.ml.online_catalog import Scaling, check_online_features, get_online_entry
from vigil.ml.provenance import split_trailer, unpickle_verified, with_trailer

if TYPE_CHECKING:
    from vigil.ml.detector import FittedDetector

__all__ = [
    "STATE_MAGIC",
    "OnlineModel",
    "Step",
    "ThresholdSpec",
    "dump_state",
    "load_state",
]


@dataclass(frozen=True)
class ThresholdSpec:
    """When an event is an anomaly: `quantile` — its score reaches the running `q` quantile of all scores so far
    (River's `QuantileFilter`); `fixed` — its score reaches `value` (River's `ThresholdFilter`); `model` — its score
    is above the batch model's own threshold. `protect`: flagged events are not learned (River's default)."""

    kind: Literal["quantile", "fixed", "model"] = "quantile"
    q: float = 0.99
    value: float | None = None
    protect: bool = True


@dataclass
class Step:
    """What one batch did: a score and a flag per event, the threshold each flagged event reached (by index), and
    the events (by index) at which drift was detected."""

    scores: list[float] = field(default_factory=list)
    flags: list[bool] = field(default_factory=list)
    thresholds: dict[int, float | None] = field(default_factory=dict)
    drifts: list[tuple[int, dict[str, float]]] = field(default_factory=list)


def _scaler(kind: Scaling) -> Any:
    preprocessing = importlib.import_module("river.preprocessing")
    return preprocessing.MinMaxScaler() if kind == "minmax" else preprocessing.StandardScaler()


class OnlineModel:
    """A stream's learnt state. Build it with `create`; feed it with `process`; persist it with `dump_state`.

    With a batch `scorer` (a trained model version applied to a stream) events are scored only, never learnt; the
    scorer itself is not part of the state (it is the stored, signed artifact) and is attached again on load.
    """

    def __init__(
        self,
        *,
        detector: Any,
        features: Sequence[str],
        univariate: bool,
        threshold: ThresholdSpec,
        warmup: int,
        drift_delta: float | None,
        scorer: FittedDetector | None = None,
    ) -> None:
        self.features = list(features)
        # Half-space trees (alone or min-max scaled) run as numpy arrays, River's scores bit for bit (`ml.hst`).
        self.detector: Any = HalfSpaceForest.from_river(detector, self.features) or detector
        self.univariate = univariate
        self.threshold = threshold
        self.warmup = warmup
        self.seen = 0
        self.scorer = scorer
        stats = importlib.import_module("river.stats")
        self.quantile = stats.Quantile(q=threshold.q) if threshold.kind == "quantile" else None
        self.drift = importlib.import_module("river.drift").ADWIN(delta=drift_delta) if drift_delta else None

    @classmethod
    def create(
        cls,
        *,
        algorithm: str,
        parameters: Mapping[str, Any],
        features: Sequence[str],
        threshold: ThresholdSpec,
        warmup: int = 0,
        scaling: Scaling = "auto",
        drift_delta: float | None = 0.002,
    ) -> OnlineModel:
        """A fresh model of the online catalog entry `algorithm` (parameters as `validate_online_parameters` gives)."""
        entry = get_online_entry(algorithm)
        check_online_features(entry, features)
        if threshold.kind == "model":
            raise MLError("A 'model' threshold needs a trained batch model; online detectors use quantile or fixed.")
        detector = entry.build(parameters)
        chosen = entry.scaling if scaling == "auto" else scaling
        if chosen != "none" and not entry.univariate:
            detector = _scaler(chosen) | detector
        return cls(
            detector=detector,
            features=features,
            univariate=entry.univariate,
            threshold=threshold,
            warmup=warmup,
            drift_delta=drift_delta,
        )

    @classmethod
    def for_batch_model(
        cls, scorer: FittedDetector, *, threshold: ThresholdSpec, warmup: int = 0, drift_delta: float | None = 0.002
    ) -> OnlineModel:
        """A trained batch model applied to a stream: it scores events, it never learns them."""
        return cls(
            detector=None,
            features=scorer.features,
            univariate=False,
            threshold=threshold,
            warmup=warmup,
            drift_delta=drift_delta,
            scorer=scorer,
        )

    def process(self, events: Sequence[Mapping[str, float]]) -> Step:
        """Scores, classifies and learns each event in order (values already checked: every feature, finite)."""
        step = Step()
        if isinstance(self.detector, HalfSpaceForest):
            self._process_forest(self.detector, events, step)
            return step
        raw = self._batch_scores(events) if self.scorer is not None else None
        for index, x in enumerate(events):
            score = float(raw[index]) if raw is not None else self._score(x)
            if not math.isfinite(score):
                score = 0.0  # a detector's first events (no spread yet); JSON cannot carry NaN anyway
            flagged = self._account(score, index, step)
            if self.detector is not None and not (self.threshold.protect and flagged):
                self._learn(x)
        return step

    def _process_forest(self, forest: HalfSpaceForest, events: Sequence[Mapping[str, float]], step: Step) -> None:
        """`process`'s loop for half-space trees: each stretch up to the window's end is scored at once as if all
        of it were learnt; the walk below classifies event by event and stops at the first event not learnt (flagged
        and protected), so the stretch learnt is the prefix before it, and scoring resumes after it."""
        rows = forest.matrix(events)
        protect = self.threshold.protect
        start = 0
        while start < len(rows):
            scores, pending = forest.score(rows[start : start + forest.span])
            learnt = len(scores)
            for offset, score in enumerate(scores):  # scores are finite: no NaN to clean as in `process`
                flagged = self._account(score, start + offset, step)
                if flagged and protect:  # not learnt: the scores after it assumed it was
                    learnt = offset
                    break
            forest.learn(pending, learnt)
            start += learnt if learnt == len(scores) else learnt + 1

    def _account(self, score: float, index: int, step: Step) -> bool:
        """Classifies an event by its score, then lets the quantile and the drift detector see the score (neither
        reads the detector, so learning the event may come before or after); True if it was flagged."""
        warm = self.seen >= self.warmup
        flagged = warm and self._classify(score)
        if flagged:
            step.thresholds[index] = self.current_threshold
        # Early warm-up scores come from an immature model (half-space trees score 0 for a whole window): the
        # quantile learns from the second half of the warm-up on, so it is settled when flagging starts; the drift
        # detector from the end of the warm-up.
        if self.quantile is not None and self.seen >= self.warmup // 2:
            self.quantile.update(score)
        if warm:
            self._observe(score, index, step)
        self.seen += 1
        step.scores.append(score)
        step.flags.append(flagged)
        return flagged

    def _score(self, x: Mapping[str, float]) -> float:
        if self.univariate:
            return float(self.detector.score_one(None, x[self.features[0]]))
        return float(self.detector.score_one(x))

    def _learn(self, x: Mapping[str, float]) -> None:
        if self.univariate:
            self.detector.learn_one(None, x[self.features[0]])
        else:
            self.detector.learn_one(x)

    def _observe(self, score: float, index: int, step: Step) -> None:
        if self.drift is not None:
            self.drift.update(score)
            if self.drift.drift_detected:
                step.drifts.append(
                    (index, {"estimation": float(self.drift.estimation), "width": float(self.drift.width)})
                )

    def _classify(self, score: float) -> bool:
        spec = self.threshold
        if spec.kind == "quantile":
            assert self.quantile is not None
            # River's own rule, `or` included: a quantile of 0 (no spread yet, e.g. half-space trees' first window)
            # flags nothing, like no quantile at all.
            return bool(score >= (self.quantile.get() or math.inf))
        if spec.kind == "fixed":
            assert spec.value is not None
            return score >= spec.value
        assert self.scorer is not None
        return score > self.scorer.threshold

    def _batch_scores(self, events: Sequence[Mapping[str, float]]) -> np.ndarray:
        assert self.scorer is not None
        frame = pl.DataFrame([{f: float(x[f]) for f in self.features} for x in events], schema=self.features)
        return self.scorer.score(frame)

    @property
    def current_threshold(self) -> float | None:
        """The score an event must reach now to be flagged (None while the quantile has no data)."""
        if self.threshold.kind == "quantile":
            assert self.quantile is not None
            value = self.quantile.get()
            return float(value) if value is not None else None
        if self.threshold.kind == "fixed":
            return self.threshold.value
        return float(self.scorer.threshold) if self.scorer is not None else None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["scorer"] = None  # the batch model is its own signed artifact; `load_state` is given it back
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # A snapshot written before `ml.hst` holds River's own half-space trees: from here on, the same as arrays.
        self.detector = HalfSpaceForest.from_river(self.detector, self.features) or self.detector

    def compacted(self) -> OnlineModel:
        """An equal model (same state, same scores from here on) whose objects keep their attributes inline.

        Why: CPython 3.11 keeps a plain object's attributes in an inline array, read by the specialised (fast)
        attribute access, until something asks for its `__dict__` — pickling (`dump_state`: every snapshot) and
        unpickling (`load_state`: every recovery) both do — and from then on every attribute read of that object
        takes the slower dictionary path. River's half-space trees walked ~160 node attributes per event: after its
        first snapshot such a model scored and learnt ~1.5x slower than River's own loop (1.9 vs 1.3 ms per 100
        events). They are arrays now (`ml.hst`), but River's other detectors, the quantile and ADWIN are still read
        event by event. This copy is built by setting each attribute on a new object, so it is as fast as a model
        never pickled.
        """
        buffer = io.BytesIO()
        _InlinePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(self)
        copy = pickle.loads(buffer.getbuffer())  # noqa: S301 - our own bytes, made just above
        assert isinstance(copy, OnlineModel)
        copy.scorer = self.scorer
        return copy


def _settable(cls: type) -> frozenset[str] | None:
    """The attribute names `cls` handles itself (data descriptors), or None when its objects are not plain: a class
    of Python's making down to `object` (no builtin's subclass, no slots), pickled the default way (no `__reduce__`,
    `__getstate__`, `__setstate__`, `__getnewargs__` or `__setattr__` of its own). Those keep pickle's own
    rebuilding."""
    if (
        issubclass(cls, type)
        or not all(
            base is object or (base.__flags__ & _HEAP_TYPE and not vars(base).get("__slots__")) for base in cls.__mro__
        )
        or cls.__reduce_ex__ is not object.__reduce_ex__
        or cls.__reduce__ is not object.__reduce__
        or getattr(cls, "__getstate__", None) is not object.__getstate__
        or any(hasattr(cls, name) for name in ("__setstate__", "__getnewargs__", "__getnewargs_ex__"))
        or cls.__setattr__ is not object.__setattr__
    ):
        return None
    return frozenset(name for name in dir(cls) if hasattr(type(getattr(cls, name, None)), "__set__"))


_SETTABLE: dict[type, frozenset[str] | None] = {}  # per class, asked for every object pickled


_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python


class _InlinePickler(pickle.Pickler):
    """Pickles as pickle does, except that plain objects' attributes go as the "slot state" of pickle's BUILD,
    `(None, attributes)`, not as their `__dict__`: unpickling sets them one by one (`setattr`, in C), so they stay
    inline. The reduction is the one pickle's default would make (`copyreg.__newobj__` of the class, then the state),
    by hand — a model has thousands of such objects and this runs for each."""

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        try:
            descriptors = _SETTABLE[cls]
        except KeyError:
            descriptors = _SETTABLE[cls] = _settable(cls)
        if descriptors is None:
            return NotImplemented
        state = obj.__dict__
        if not descriptors.isdisjoint(state):
            return NotImplemented
        return copyreg.__newobj__, (cls,), (None, state)  # type: ignore[attr-defined]


STATE_MAGIC = b"VIGILSTR"
# 1: plain pickle (its unpickled objects read through a dict: compacted on load); 2: `_InlinePickler`'s, whose
# unpickled objects are already inline, so loading a snapshot is the compaction (and can run off the request path);
# 3: format 2 holding half-space trees as arrays (`ml.hst`). Every format loads here (River's trees of formats 1 and
# 2 become arrays). Only a model with such trees is written as 3: servers before it refuse those snapshots as a newer
# Vigil's (`ArtifactIncompatible`, naming the format) and still read every other stream's (format 2).
_STATE_FORMAT = 3
_INLINE_FORMAT = 2
_HEADER = len(STATE_MAGIC) + 1 + hashlib.sha256().digest_size


def dump_state(model: OnlineModel, *, key: bytes) -> bytes:
    """The model's whole state as signed bytes (magic, format byte, HMAC-SHA256, pickle and the versions that wrote
    it). Loading them gives a model that reads its attributes inline (`OnlineModel.compacted`)."""
    buffer = io.BytesIO()
    _InlinePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(model)
    payload = with_trailer(buffer.getvalue())
    version = _STATE_FORMAT if isinstance(model.detector, HalfSpaceForest) else _INLINE_FORMAT
    return STATE_MAGIC + bytes([version]) + hmac.new(key, payload, hashlib.sha256).digest() + payload


def load_state(
    data: bytes, *, key: bytes, scorer: FittedDetector | None = None, also: Sequence[bytes] = ()
) -> OnlineModel:
    """The model in `data`, after checking its signature (never unpickled otherwise); `scorer` re-attached.

    >>> load_state(b"VIGILSTR\\x01" + bytes(40), key=b"k")
    Traceback (most recent call last):
    ...
    vigil.ml.errors.ArtifactTampered: The stream state failed its integrity check.
    """
    data = bytes(data)
    if len(data) <= _HEADER or not data.startswith(STATE_MAGIC):
        raise ArtifactTampered("The data is not a Vigil stream state.")
    version = data[len(STATE_MAGIC)]
    if version > _STATE_FORMAT:  # a newer Vigil's snapshot; nothing is unpickled either way
        raise ArtifactIncompatible(
            "The stream state",
            written_by={"state format": str(version)},
            read_by={"state format": str(_STATE_FORMAT)},
        )
    if version not in (1, _INLINE_FORMAT, _STATE_FORMAT):
        raise ArtifactTampered("The data is not a Vigil stream state.")
    signature, payload = data[len(STATE_MAGIC) + 1 : _HEADER], data[_HEADER:]
    if not any(hmac.compare_digest(signature, hmac.new(k, payload, hashlib.sha256).digest()) for k in (key, *also)):
        raise ArtifactTampered("The stream state failed its integrity check.")
    pickled, written_by = split_trailer(payload)
    model = unpickle_verified(pickled, what="The stream state", kind=OnlineModel, written_by=written_by)
    model.scorer = scorer
    # A plain pickle's unpickled objects read their attributes slowly (`OnlineModel.compacted`); the inline formats'
    # are built as a compacted copy is.
    return model if version != 1 else model.compacted()
