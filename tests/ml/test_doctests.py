"""The runnable examples in the engine's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import vigil.ml

MODULES = ["vigil.ml", *(f"vigil.ml.{m.name}" for m in pkgutil.iter_modules(vigil.ml.__path__))]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
