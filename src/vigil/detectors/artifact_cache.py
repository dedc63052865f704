"""A small process-wide cache of loaded models, so detection does not re-read and re-verify an artifact per call.

Artifacts are immutable (each training writes a new key), so a key names one model for good.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from vigil.ml import FittedDetector

_MAX_MODELS = 32


class ModelCache:
    def __init__(self, max_models: int = _MAX_MODELS) -> None:
        self._models: OrderedDict[str, FittedDetector] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_models

    def get(self, key: str, load: Callable[[], FittedDetector]) -> FittedDetector:
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
        model = load()
        with self._lock:
            self._models[key] = model
            while len(self._models) > self._max:
                self._models.popitem(last=False)
        return model

    def forget(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._models.pop(key, None)


models = ModelCache()
