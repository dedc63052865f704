"""Fits that report how far they are (`vigil.ml.stepwise`): the same model as one fit, score for score; progress
that only moves forward, inside the fit; and a report that raises stops the fit with its own exception."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from vigil import ml
from vigil.ml.stepwise import STEPS

FEATURES = [f"x{i}" for i in range(6)]


def fit(
    frame: pl.DataFrame, algorithm: str, progress: ml.detector.FitReport | None = None, **params: object
) -> ml.FittedDetector:
    return ml.fit_detector(
        frame,
        algorithm=algorithm,
        parameters=params,
        contamination=0.05,
        features=FEATURES,
        preprocessing=ml.Preprocessing(),
        progress=progress,
    )


@pytest.mark.parametrize("algorithm", ["iforest", "sklearn_iforest"])
@pytest.mark.parametrize("trees", [37, 100, 3])
def test_a_forest_grown_in_steps_is_the_forest_one_fit_grows(
    planted: tuple[pl.DataFrame, np.ndarray], algorithm: str, trees: int
) -> None:
    frame, _ = planted
    heard: list[tuple[float, str]] = []
    stepwise = fit(
        frame, algorithm, lambda share, stage: heard.append((share, stage)), n_estimators=trees, random_state=7
    )
    whole = fit(frame, algorithm, None, n_estimators=trees, random_state=7)
    fresh = pl.DataFrame(np.random.default_rng(1).normal(0, 2, size=(200, 6)), schema=FEATURES)
    assert np.array_equal(stepwise.score(fresh), whole.score(fresh))
    assert stepwise.threshold == whole.threshold
    assert stepwise.score_summary == whole.score_summary
    assert (
        len(
            stepwise.estimator.estimators_
            if algorithm == "sklearn_iforest"
            else stepwise.estimator.detector_.estimators_
        )
        == trees
    )
    assert stepwise.estimator.get_params() == whole.estimator.get_params()  # warm start and the rest put back

    shares = [share for share, _ in heard]
    assert shares == sorted(shares)
    assert shares[0] >= 0.0
    assert shares[-1] < 1.0
    fitting = [share for share, stage in heard if stage == "fitting"]
    # Inside the fit, not only at its edges: one report per increment of trees (and one as it starts).
    assert len(fitting) == 1 + min(STEPS, trees)
    assert next(stage for _, stage in heard) == "preparing features"
    assert heard[-1][1] == "scoring the training rows"


def test_auto_reports_member_by_member(planted: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, _ = planted
    heard: list[tuple[float, str]] = []
    with_progress = fit(frame, "auto", lambda share, stage: heard.append((share, stage)), random_state=3)
    without = fit(frame, "auto", None, random_state=3)
    assert np.array_equal(with_progress.score(frame), without.score(frame))
    fitting = [share for share, stage in heard if stage == "fitting"]
    assert len(fitting) >= 1 + 5  # a report per member of the ensemble
    assert fitting == sorted(fitting)
    assert len(set(fitting)) == len(fitting)


def test_one_call_fits_report_their_stage_boundaries(planted: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, _ = planted
    heard: list[str] = []
    fit(frame, "ecod", lambda share, stage: heard.append(stage))
    assert heard == ["preparing features", "fitting", "scoring the training rows"]


class Stop(Exception):
    """What a job's report raises when it was cancelled meanwhile (the engine knows nothing of jobs)."""


@pytest.mark.parametrize("algorithm", ["iforest", "auto"])
def test_a_report_that_raises_stops_the_fit_with_its_own_exception(
    planted: tuple[pl.DataFrame, np.ndarray], algorithm: str
) -> None:
    frame, _ = planted
    calls: list[float] = []

    def cancelled_midway(share: float, stage: str) -> None:
        calls.append(share)
        if stage == "fitting" and len(calls) > 3:
            raise Stop

    with pytest.raises(Stop):  # not a TrainingFailed: a cancelled job must end cancelled, not failed
        fit(frame, algorithm, cancelled_midway, random_state=1)
    assert len(calls) == 4  # nothing was reported after it stopped


@pytest.mark.parametrize("algorithm", ["iforest", "ecod", "auto"])
@pytest.mark.parametrize("failing_stage", ["fitting", "scoring the training rows"])
def test_a_report_that_fails_at_any_stage_is_not_a_training_failure(
    planted: tuple[pl.DataFrame, np.ndarray], algorithm: str, failing_stage: str
) -> None:
    """A job's report writes to the database: an outage there must reach the job as itself (which runs the job
    again when the database is back), never as "could not be trained" (which fails it for good)."""

    class Outage(Exception):
        pass

    def report(share: float, stage: str) -> None:
        if stage == failing_stage:
            raise Outage

    seeded = {} if algorithm == "ecod" else {"random_state": 1}
    with pytest.raises(Outage):
        fit(planted[0], algorithm, report, **seeded)
