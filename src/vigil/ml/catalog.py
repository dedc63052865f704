"""The detector catalog: every algorithm the platform offers, looked up by name, listed, and its parameters checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vigil.ml.auto_entry import AUTO_ENTRIES
from vigil.ml.entry import CatalogEntry
from vigil.ml.errors import UnknownAlgorithm
from vigil.ml.online_catalog import ONLINE_CATALOG, describe_online, is_online
from vigil.ml.params import check_parameters
from vigil.ml.pyod_detectors import PYOD_ENTRIES
from vigil.ml.sklearn_detectors import SKLEARN_ENTRIES

__all__ = ["CATALOG", "describe_catalog", "get_entry", "validate_parameters", "warm_up"]


def _index(*groups: tuple[CatalogEntry, ...]) -> dict[str, CatalogEntry]:
    catalog: dict[str, CatalogEntry] = {}
    for entry in (e for group in groups for e in group):
        # Two entries with one name would make one of them unreachable without anyone noticing.
        if entry.name in catalog:
            raise RuntimeError(f"duplicate catalog entry {entry.name!r}")
        catalog[entry.name] = entry
    return catalog


CATALOG: Mapping[str, CatalogEntry] = _index(AUTO_ENTRIES, PYOD_ENTRIES, SKLEARN_ENTRIES)
if set(CATALOG) & set(ONLINE_CATALOG):  # one name, one algorithm, whichever family
    raise RuntimeError(f"batch and online entries share names: {sorted(set(CATALOG) & set(ONLINE_CATALOG))}")


def get_entry(algorithm: str) -> CatalogEntry:
    """The catalog entry named `algorithm`; raises `UnknownAlgorithm` (naming it) otherwise.

    Examples
    --------
    >>> get_entry("iforest").family
    'ensemble'
    """
    try:
        return CATALOG[algorithm]
    except KeyError:
        if is_online(algorithm):
            raise UnknownAlgorithm(
                algorithm, sorted(CATALOG), hint="it is an online algorithm: use it in a stream (POST /streams)"
            ) from None
        raise UnknownAlgorithm(algorithm, sorted(CATALOG)) from None


def describe_catalog() -> list[dict[str, Any]]:
    """Every entry with its parameter schema, in catalog order (batch detectors, then the online ones), as plain
    data for the API.

    Examples
    --------
    >>> knn = next(e for e in describe_catalog() if e["name"] == "knn")
    >>> [(p["name"], p["type"], p["default"]) for p in knn["params"]][0]
    ('n_neighbors', 'int', 5)
    """
    return [entry.describe() for entry in CATALOG.values()] + describe_online()


def validate_parameters(algorithm: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The full parameters of `algorithm` (defaults filled in), or an error listing every problem.

    Raises `UnknownAlgorithm` for a name not in the catalog and `InvalidParameters` for unknown names, wrong
    types (a boolean is not an integer), values out of bounds and values outside the choices.

    Examples
    --------
    >>> validate_parameters("iforest", {"n_estimators": 50})
    {'n_estimators': 50, 'max_features': 1.0, 'bootstrap': False, 'random_state': None}
    >>> validate_parameters("iforest", {"n_estimators": 0})
    Traceback (most recent call last):
    ...
    vigil.ml.errors.InvalidParameters: 1 invalid parameter(s) for algorithm 'iforest': 'n_estimators'.
    """
    return check_parameters(algorithm, get_entry(algorithm).params, parameters)


def warm_up() -> list[str]:
    """Imports every entry's library by building one unfitted estimator of each (PyOD compiles numba code on
    import: seconds, which the first training after start would otherwise pay). Returns the entries warmed; an
    entry whose library fails to import is left for its first real use to report.
    """
    import sklearn.metrics  # noqa: F401, PLC0415 - what the metrics and explanations import when first used
    from scipy import sparse, stats  # noqa: F401, PLC0415

    warmed = []
    for entry in CATALOG.values():
        try:
            entry.factory(validate_parameters(entry.name, {}), 0.1)
        except Exception:  # noqa: S112 - warming is best effort; training reports a real failure properly
            continue
        warmed.append(entry.name)
    return warmed
