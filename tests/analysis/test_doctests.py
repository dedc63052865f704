"""The runnable examples in the analysis engine's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import vigil.analysis

MODULES = ["vigil.analysis", *(f"vigil.analysis.{m.name}" for m in pkgutil.iter_modules(vigil.analysis.__path__))]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0
