"""River's half-space trees (behind its online min-max scaler, or alone), scored and learnt a batch at a time with
numpy, giving River's own scores bit for bit.

River walks each event through each tree in Python (~5 ms per 100 events for 10 trees of height 8): half of a
stream server's CPU. Here the trees are arrays — per tree, node `k`'s children are `2k + 1` and `2k + 2` (a tree is
full: every leaf at depth `height`), with the split feature and threshold of each inner node and the two masses of
every node — and a batch walks all trees at once, one level at a time.

Why it is exact, not merely close:

- An event's score reads only the reference masses (`r_mass`): River reads the latest masses (`l_mass`) only for a
  missing feature, and a stream's events have every feature. `r_mass` changes only when a window ends (the
  `window_size`-th learnt event), so the scores of the events up to then are independent of each other.
- Masses are integers and so are their weights `2**depth`: each tree's score is an integer below 2^53, exact in a
  float64 however it is summed. `1 - score / max_score` is then the same two IEEE operations River does.
- River's min-max scaler, before an event, holds the minimum and maximum of the events learnt so far; scaling is
  `(x - min) / (max - min)` (0 where max == min), elementwise IEEE arithmetic again. A score uses the scaler as it
  was before the event; a learnt event is scaled after the scaler learnt it (River's pipeline order).

What is not known ahead is which events are learnt: a flagged event of a protected stream is not, and flags depend
on River's running quantile, event by event. So `score` scores a stretch speculatively, as if each event of it were
learnt, and the caller commits (`learn`) the prefix that was: the scores up to the first event not learnt (it
included) are the true ones.

The trees are built by River's own `make_padded_tree` with River's generator, on the first learnt event as River
does: the same seed gives the same trees. `from_river` reads a River model's state (a snapshot written before this
module existed) and `to_river` gives it back.

>>> from river import anomaly, preprocessing
>>> river = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(n_trees=3, height=4, window_size=5, seed=1)
>>> forest = HalfSpaceForest.from_river(river, ["x", "y"])
>>> events = [{"x": (i * 7 % 11) / 3, "y": (i * 5 % 13) / 4} for i in range(20)]
>>> ours = []
>>> for i in range(0, 20, forest.span):
...     scores, pending = forest.score(forest.matrix(events[i : i + forest.span]))
...     forest.learn(pending, len(scores))
...     ours.extend(scores)
>>> expected = []
>>> for x in events:
...     expected.append(float(river.score_one(x)))
...     river.learn_one(x)
>>> ours == expected, ours[:5] == [0.0] * 5, len(set(ours)) > 1
(True, True, True)
"""

from __future__ import annotations

import importlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["HalfSpaceForest", "Pending"]

_PADDING = 0.15  # River's, in `HalfSpaceTrees.learn_one`


@dataclass(frozen=True)
class Pending:
    """A scored stretch, ready to be learnt: its events as the trees see them once the scaler has learnt each (row
    `i` scaled by the minimum and maximum of the events up to `i`, it included), the scaler's state after each, and
    the events' paths through the trees when `score` walked them already (depth × tree × event)."""

    learnt_values: NDArray[np.float64]
    low_after: NDArray[np.float64]
    high_after: NDArray[np.float64]
    paths: NDArray[np.intp] | None


class HalfSpaceForest:
    """River's `HalfSpaceTrees` (and its `MinMaxScaler` when `scaled`) as arrays. Build it with `from_river`."""

    def __init__(
        self,
        *,
        features: Sequence[str],
        n_trees: int,
        height: int,
        window_size: int,
        limits: Mapping[str, tuple[float, float]],
        rng: random.Random,
        scaled: bool,
    ) -> None:
        self.features = list(features)
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        # Each feature's range (River's `limits`), in `features` order (a tuple: no dict among the attributes).
        self.limits = tuple(limits[name] for name in self.features)
        self.rng: random.Random | None = rng  # used once, to build the trees; None after
        self.scaled = scaled
        width = len(self.features)
        self.low = np.full(width, math.inf)  # the scaler's running minimum, per feature (inf: nothing learnt)
        self.high = np.full(width, -math.inf)
        inner, nodes = 2**height - 1, 2 ** (height + 1) - 1
        self.feature = np.zeros((n_trees, inner), dtype=np.int16)  # index into `features`
        self.threshold = np.zeros((n_trees, inner))
        self.r_mass = np.zeros((n_trees, nodes), dtype=np.int64)
        self.l_mass = np.zeros((n_trees, nodes), dtype=np.int64)
        self.built = False
        self.counter = 0  # events learnt in the current window
        self.first_window = True

    @property
    def span(self) -> int:
        """How many events `score` can score with the present reference masses: those up to the end of the window
        if each of them is learnt (fewer are learnt: fewer are then scored before the next call)."""
        return self.window_size - self.counter

    def matrix(self, events: Sequence[Mapping[str, float]]) -> NDArray[np.float64]:
        """The events as rows of their features' values, in `features` order."""
        if len(self.features) == 1:
            name = self.features[0]
            return np.array([[x[name]] for x in events], dtype=np.float64).reshape(len(events), 1)
        take = itemgetter(*self.features)
        return np.array([take(x) for x in events], dtype=np.float64).reshape(len(events), len(self.features))

    def score(self, rows: NDArray[np.float64]) -> tuple[list[float], Pending]:
        """River's scores of `rows` (at most `span` of them) as if each were learnt after it was scored, and what
        `learn` needs to learn a prefix of them."""
        events = len(rows)
        assert 0 < events <= self.span
        if self.scaled:
            # The scaler's state before each row and after it: running extremes over the rows, from the state now.
            # (np.minimum may keep -0.0 where River keeps 0.0: a zero's sign changes no comparison below.)
            low = np.minimum.accumulate(np.vstack([self.low, rows]), axis=0)
            high = np.maximum.accumulate(np.vstack([self.high, rows]), axis=0)
            both = _scale(np.vstack([rows, rows]), np.vstack([low[:-1], low[1:]]), np.vstack([high[:-1], high[1:]]))
            learnt, low_after, high_after = both[events:], low[1:], high[1:]
        else:
            both = learnt = rows
            low_after = high_after = np.empty((0, 0))
        if self.first_window:  # River scores 0 until the first window has ended (and builds its trees on a learn)
            return [0.0] * events, Pending(learnt, low_after, high_after, None)
        # One walk for the scores (events as scaled before they are learnt) and the learning (as scaled after).
        paths = self._paths(both)
        size_limit = 0.1 * self.window_size  # River's early stop: a node this light ends the walk
        masses = self.r_mass.ravel()
        total = np.zeros((self.n_trees, events), dtype=np.int64)
        going = np.ones((self.n_trees, events), dtype=bool)
        for depth in range(self.height + 1):
            mass = masses[paths[depth, :, :events]]
            total += (mass << depth) * going
            going &= mass >= size_limit
        max_score = self.n_trees * self.window_size * (2 ** (self.height + 1) - 1)
        scores = 1.0 - total.sum(axis=0).astype(np.float64) / float(max_score)
        return scores.tolist(), Pending(learnt, low_after, high_after, paths[:, :, len(both) - events :])

    def learn(self, pending: Pending, count: int) -> None:
        """Learns the first `count` rows `score` was given (the scaler, then the trees, as River's pipeline does);
        ends the window when it is full."""
        if count == 0:
            return
        if self.scaled:
            self.low, self.high = pending.low_after[count - 1].copy(), pending.high_after[count - 1].copy()
        if not self.built:
            self._build()
        paths = pending.paths if pending.paths is not None else self._paths(pending.learnt_values)
        np.add.at(self.l_mass.ravel(), paths[:, :, :count].ravel(), 1)
        self.counter += count
        if self.counter == self.window_size:
            self.r_mass[...] = self.l_mass
            self.l_mass[...] = 0
            self.first_window = False
            self.counter = 0

    def _paths(self, values: NDArray[np.float64]) -> NDArray[np.intp]:
        """Per depth (root to leaves), the node each row reaches in each tree: flat indices into the masses."""
        trees, events = self.n_trees, len(values)
        inner, nodes = self.feature.shape[1], self.r_mass.shape[1]
        flat = values.ravel()
        row_start = np.arange(0, events * values.shape[1], values.shape[1])
        tree_inner = np.arange(0, trees * inner, inner)[:, None]
        tree_nodes = np.arange(0, trees * nodes, nodes)[:, None]
        feature, threshold = self.feature.ravel(), self.threshold.ravel()
        paths = np.empty((self.height + 1, trees, events), dtype=np.intp)
        node = np.zeros((trees, events), dtype=np.intp)
        paths[0] = tree_nodes
        for depth in range(1, self.height + 1):
            split = node + tree_inner
            value = flat[row_start + feature[split]]
            # River goes left when `value < threshold`, right otherwise (NaN included).
            node = 2 * node + 1 + ~(value < threshold[split])
            np.add(node, tree_nodes, out=paths[depth])
        return paths

    def _build(self) -> None:
        """River's trees, as `HalfSpaceTrees.learn_one` builds them on the first event it learns (its features
        sorted, its limits, its generator), laid out as arrays."""
        padded = importlib.import_module("river.tree.padded")
        assert self.rng is not None
        for tree in range(self.n_trees):
            root = padded.make_padded_tree(
                limits={name: self.limits[self.features.index(name)] for name in sorted(self.features)},
                height=self.height,
                padding=_PADDING,
                rng=self.rng,
                r_mass=0,
                l_mass=0,
            )
            self._read_tree(tree, root)
        self.rng = None
        self.built = True

    def _read_tree(self, tree: int, root: Any) -> None:
        column = {name: index for index, name in enumerate(self.features)}
        inner = self.feature.shape[1]
        stack = [(0, root)]
        while stack:
            k, node = stack.pop()
            self.r_mass[tree, k], self.l_mass[tree, k] = node.r_mass, node.l_mass
            if k < inner:
                self.feature[tree, k], self.threshold[tree, k] = column[node.feature], node.threshold
                stack += [(2 * k + 1, node.children[0]), (2 * k + 2, node.children[1])]

    @classmethod
    def from_river(cls, detector: Any, features: Sequence[str]) -> HalfSpaceForest | None:
        """The forest equal to River's `HalfSpaceTrees`, alone or behind a `MinMaxScaler` (a two-step pipeline), in
        whatever state it is; None for any other detector or scaling (River's own then runs)."""
        anomaly = importlib.import_module("river.anomaly")
        compose = importlib.import_module("river.compose")
        preprocessing = importlib.import_module("river.preprocessing")
        scaler: Any = None
        if type(detector) is compose.Pipeline:
            steps = list(detector.steps.values())
            if (
                len(steps) != 2
                or type(steps[0]) is not preprocessing.MinMaxScaler
                or getattr(steps[0], "window_size", None) is not None
                or compose.Pipeline._LEARN_UNSUPERVISED_DURING_PREDICT
            ):
                return None
            scaler, hst = steps
        else:
            hst = detector
        if type(hst) is not anomaly.HalfSpaceTrees:
            return None
        forest = cls(
            features=features,
            n_trees=hst.n_trees,
            height=hst.height,
            window_size=hst.window_size,
            limits={name: hst.limits[name] for name in features},
            rng=_copy(hst.rng),  # River's own model stays as it was
            scaled=scaler is not None,
        )
        if scaler is not None:
            for index, name in enumerate(forest.features):
                if name in scaler.min:  # River makes an entry (at inf) when it first scales a feature
                    forest.low[index], forest.high[index] = scaler.min[name].get(), scaler.max[name].get()
        if hst.trees:
            for tree, root in enumerate(hst.trees):
                forest._read_tree(tree, root)
            forest.rng, forest.built = None, True
        forest.counter, forest.first_window = hst.counter, hst._first_window
        return forest

    def to_river(self, seed: int | None = None) -> Any:
        """River's model in this state (what `from_river` read), to carry on with River itself: its trees, masses,
        window position and scaler. `seed` is only recorded (River's generator is used to build trees only)."""
        anomaly = importlib.import_module("river.anomaly")
        padded = importlib.import_module("river.tree.padded")
        hst = anomaly.HalfSpaceTrees(
            n_trees=self.n_trees,
            height=self.height,
            window_size=self.window_size,
            limits=dict(zip(self.features, self.limits, strict=True)),
            seed=seed,
        )
        if self.rng is not None:
            hst.rng = _copy(self.rng)
        inner = self.feature.shape[1]

        def node(tree: int, k: int) -> Any:
            masses = {"r_mass": int(self.r_mass[tree, k]), "l_mass": int(self.l_mass[tree, k])}
            if k >= inner:
                return padded.PaddedLeaf(**masses)
            return padded.PaddedBranch(
                left=node(tree, 2 * k + 1),
                right=node(tree, 2 * k + 2),
                feature=self.features[self.feature[tree, k]],
                threshold=float(self.threshold[tree, k]),
                **masses,
            )

        if self.built:
            hst.trees = [node(tree, 0) for tree in range(self.n_trees)]
            hst._tree_nodes = [list(tree.iter_dfs()) for tree in hst.trees]
        hst.counter, hst._first_window = self.counter, self.first_window
        if not self.scaled:
            return hst
        scaler = importlib.import_module("river.preprocessing").MinMaxScaler()
        for index, name in enumerate(self.features):
            if math.isfinite(self.low[index]):
                scaler.min[name].update(float(self.low[index]))
                scaler.max[name].update(float(self.high[index]))
        return scaler | hst


def _scale(rows: NDArray[np.float64], low: NDArray[np.float64], high: NDArray[np.float64]) -> NDArray[np.float64]:
    """River's `MinMaxScaler.transform_one`, row by row: `(x - low) / (high - low)`, 0 where high == low. Before
    anything is learnt (low inf, high -inf) it gives NaN, as River does; those scores are 0 (the first window)."""
    spread = high - low
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.divide(rows - low, spread, out=np.zeros_like(rows), where=spread != 0)


def _copy(rng: random.Random) -> random.Random:
    copy = random.Random()
    copy.setstate(rng.getstate())
    return copy
