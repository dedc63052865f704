"""A process-wide LRU of loaded models, so detection does not re-read and re-verify an artifact per call.

Entries are keyed by the model version and its artifact's key. Artifacts are immutable (each training writes a new
key and version), so an entry names one verified model for good; deleting a detector forgets its entries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from vigil.ml import FittedDetector

_MAX_MODELS = 32


class ModelCache:
    def __init__(self, max_models: int = _MAX_MODELS) -> None:
        self._models: OrderedDict[tuple[str, str], FittedDetector] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_models
        self.hits = 0
        self.loads = 0

    def get(self, version_id: str, artifact_key: str, load: Callable[[], FittedDetector]) -> FittedDetector:
        key = (version_id, artifact_key)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                self.hits += 1
                return model
        model = load()  # outside the lock: loading one model must not hold up scoring with another
        with self._lock:
            self.loads += 1
            self._models[key] = model
            while len(self._models) > self._max:
                self._models.popitem(last=False)
        return model

    def forget(self, artifact_keys: list[str]) -> None:
        gone = set(artifact_keys)
        with self._lock:
            for key in [k for k in self._models if k[1] in gone]:
                del self._models[key]

    def __len__(self) -> int:
        return len(self._models)


models = ModelCache()
