"""Every element-wise, reducer and array process has an official spec and runs its spec's examples."""

from __future__ import annotations

import math as pymath
from typing import Any

import numpy as np
import pytest

from processes.core.specs import get_spec
from processes.library import arrays, dates, logic, math, reducers, texts

MODULES = (math, logic, reducers, arrays, texts, dates)
PROCESSES = {process_id: function for module in MODULES for process_id, function in module.PROCESSES.items()}


def _has_reference(value: Any) -> bool:
    if isinstance(value, dict):
        return (
            "from_parameter" in value or "process_graph" in value or any(map(_has_reference, value.values()))
        )
    if isinstance(value, list):
        return any(map(_has_reference, value))
    return False


def _examples() -> list[Any]:
    cases = []
    for process_id in sorted(PROCESSES):
        for index, example in enumerate((get_spec(process_id) or {}).get("examples", [])):
            if "arguments" in example and "returns" in example:
                cases.append(pytest.param(process_id, index, id=f"{process_id}-{index}"))
    return cases


def assert_same(actual: Any, expected: Any) -> None:
    """Equality for JSON results: null and NaN aware, floats within 1e-10, booleans not numbers,
    and only plain Python values (no numpy scalars)."""
    assert not isinstance(actual, np.generic), f"numpy scalar {actual!r} instead of a plain value"
    if expected is None:
        assert actual is None
    elif isinstance(expected, bool):
        assert isinstance(actual, bool) and actual == expected, f"{actual!r} != {expected!r}"
    elif isinstance(expected, (int, float)):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), (
            f"{actual!r} is not a number"
        )
        if pymath.isnan(expected):
            assert pymath.isnan(actual)
        else:
            assert actual == pytest.approx(expected, rel=1e-10, abs=1e-10)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{actual!r} != {expected!r}"
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    else:
        assert actual == expected


def test_no_process_id_is_implemented_twice():
    total = sum(len(module.PROCESSES) for module in MODULES)
    assert total == len(PROCESSES)


@pytest.mark.parametrize("process_id", sorted(PROCESSES))
def test_process_has_an_official_spec(process_id):
    assert get_spec(process_id) is not None


@pytest.mark.parametrize(("process_id", "index"), _examples())
def test_process_returns_its_spec_example(process_id, index):
    example = get_spec(process_id)["examples"][index]
    if _has_reference(example["arguments"]):
        pytest.skip("the example passes a child process graph; it needs the evaluator, not a direct call")
    assert_same(PROCESSES[process_id](**example["arguments"]), example["returns"])
