"""`Detector`: the scikit-learn/PyOD way of working — `fit`, `decision_function`, `predict` — with the model trained,
kept and run on a Vigil server.

>>> from vigil.client import Detector, VigilClient
>>> vigil = VigilClient("http://127.0.0.1:8000")  # doctest: +SKIP
>>> vigil.login("ana@acme.example", "a long analyst passphrase")  # doctest: +SKIP
>>> detector = Detector(vigil, "iforest", contamination=0.1).fit(frame)  # doctest: +SKIP
>>> scores = detector.decision_function(frame)  # higher: more anomalous  # doctest: +SKIP
>>> flags = detector.predict(frame)  # 1: anomaly, 0: normal (PyOD's convention)  # doctest: +SKIP

`frame` is a pandas or polars DataFrame or a pyarrow Table. Fitting uploads it as a dataset, creates the detector
(once) and trains a new model version as a job, which `fit` waits for; scoring sends the rows as Parquet.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Self

from vigil.client import frames
from vigil.client.errors import JobFailed

if TYPE_CHECKING:
    import numpy as np

    from vigil.client.client import VigilClient


class Detector:
    def __init__(
        self,
        client: VigilClient,
        algorithm: str = "auto",
        *,
        contamination: float | None = None,
        parameters: dict[str, Any] | None = None,
        features: list[str] | None = None,
        name: str | None = None,
        detector_id: str | None = None,
        timeout: float | None = 3600.0,
        progress: bool = False,
    ) -> None:
        self.client = client
        self.algorithm = algorithm
        self.contamination = contamination
        self.parameters = parameters
        self.features = features
        self.name = name or f"{algorithm}-{uuid.uuid4().hex[:8]}"
        self.timeout = timeout
        self.progress = progress
        # Learnt by `fit` (scikit-learn's trailing underscore): where the model lives and what it decided.
        self.detector_id_: str | None = detector_id
        self.dataset_id_: str | None = None
        self.version_: int | None = None
        self.threshold_: float | None = None

    def fit(self, X: Any, y: Any = None) -> Self:
        """Trains a new model version on `X` (uploaded as a dataset) and waits for it. `y` is ignored: labels go
        through `VigilClient.detectors.feedback`, as with unsupervised estimators in scikit-learn."""
        del y
        dataset = self.client.datasets.upload(X, name=f"{self.name}-training")
        self.dataset_id_ = str(dataset["id"])
        if self.detector_id_ is None:
            created = self.client.detectors.create(
                name=self.name,
                algorithm=self.algorithm,
                parameters=self.parameters,
                contamination=self.contamination,
                features=self.features,
            )
            self.detector_id_ = str(created["id"])
        job = self.client.detectors.train(self.detector_id_, self.dataset_id_)
        done = self.client.jobs.wait(str(job["id"]), timeout=self.timeout, progress=self.progress)
        if done["status"] != "succeeded":
            raise JobFailed(done)
        result = done.get("result") or {}
        self.threshold_ = float(result["threshold"]) if "threshold" in result else None
        self.version_ = self.client.detectors.get(self.detector_id_).get("current_version")
        return self

    def score_frame(self, X: Any) -> Any:
        """`X` with `score` and `is_anomaly` columns, as the same kind of table."""
        return self.client.detectors.score(self._fitted(), X)

    def decision_function(self, X: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Each row's anomaly score (higher: more anomalous), as the server's model computes it."""
        scored = self.client.detectors.score(self._fitted(), frames.to_arrow(X))
        # pyarrow's arrays are numpy's already: the SDK need not import numpy (every `vigil` command imports it)
        scores: np.ndarray[Any, np.dtype[np.float64]] = scored.column("score").to_numpy().astype("float64")
        return scores

    def predict(self, X: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
        """1 for an anomaly (score above the model's threshold), 0 otherwise."""
        scored = self.client.detectors.score(self._fitted(), frames.to_arrow(X))
        flags: np.ndarray[Any, np.dtype[np.bool_]] = scored.column("is_anomaly").to_numpy(zero_copy_only=False)
        return flags.astype("int64")

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray[Any, np.dtype[np.int64]]:
        return self.fit(X, y).predict(X)

    def _fitted(self) -> str:
        if self.detector_id_ is None:
            raise RuntimeError("this Detector is not fitted yet: call fit(X) first")
        return self.detector_id_

    def __repr__(self) -> str:
        return f"Detector(algorithm={self.algorithm!r}, detector_id={self.detector_id_!r}, version={self.version_!r})"
