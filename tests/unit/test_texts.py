"""Text processes: their spec examples, case folding, null, number formatting and invalid arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.core.graph import Evaluator, parse_process_graph
from processes.core.specs import get_spec
from processes.library.texts import PROCESSES, text_begins, text_concat, text_contains, text_ends, text_find
from processes.process_table import build_registry


def _examples() -> list:
    return [
        pytest.param(process_id, index, id=f"{process_id}-{index}")
        for process_id in sorted(PROCESSES)
        for index in range(len(get_spec(process_id).get("examples", [])))
    ]


@pytest.mark.parametrize(("process_id", "index"), _examples())
def test_process_returns_its_spec_example(process_id, index):
    example = get_spec(process_id)["examples"][index]
    result = PROCESSES[process_id](**example["arguments"])
    assert result == example["returns"] and type(result) is type(example["returns"])


def test_text_processes_run_in_a_process_graph():
    graph = {
        "find": {
            "process_id": "text_find",
            "arguments": {"data": "openEO rocks", "pattern": "ROCKS", "case_sensitive": False},
        },
        "concat": {
            "process_id": "text_concat",
            "arguments": {"data": ["found at", {"from_node": "find"}], "separator": " "},
            "result": True,
        },
    }
    evaluator = Evaluator(build_registry(), ProcessEnv(collections=None))
    assert evaluator.evaluate(parse_process_graph({"process_graph": graph})) == "found at 7"


@pytest.mark.parametrize("process", [text_begins, text_ends, text_contains, text_find])
def test_null_data_gives_null(process):
    assert process(None, "x") is None
    assert process(None, "x", case_sensitive=False) is None


def test_case_insensitive_matching_folds_unicode_letters():
    assert text_contains("STRASSE Ärger", "ärger", case_sensitive=False) is True
    assert text_begins("Öl", "öL", case_sensitive=False) is True
    assert text_ends("ΣΟΦΙΑ", "φια", case_sensitive=False) is True
    assert text_contains("Ärger", "ärger") is False


def test_patterns_are_literal_text_not_regular_expressions():
    assert text_contains("a.b", ".") is True
    assert text_contains("ab", ".") is False
    assert text_begins("(x)", "(") is True
    assert text_ends("cost: $5", "$5") is True
    assert text_find("a+b=c", "+b") == 1


def test_text_find_returns_the_first_position_in_characters():
    assert text_find("ääb ääb", "b") == 2
    assert text_find("abcabc", "c") == 2
    assert text_find("abc", "") == 0
    assert text_find("abc", "abcd") is None


def test_text_ends_matches_only_at_the_very_end():
    assert text_ends("line\n", "line") is False
    assert text_ends("aXa", "a") is True
    assert text_ends("", "") is True


def test_empty_pattern_is_found_everywhere():
    assert text_begins("abc", "") is True
    assert text_contains("", "") is True


def test_text_concat_writes_values_like_json():
    data = [None, True, False, 0, -0.0, 1.0, -1.5, 0.1, 1e21, 1e-7, 0.000001, 2.5e-10, 123456789.0]
    expected = "null,true,false,0,0,1,-1.5,0.1,1e+21,1e-7,0.000001,2.5e-10,123456789"
    assert text_concat(data, ",") == expected


def test_text_concat_writes_nan_and_infinity_as_javascript_does():
    assert text_concat([math.nan, math.inf, -math.inf], " ") == "NaN Infinity -Infinity"


def test_text_concat_accepts_numpy_scalars_and_arrays():
    assert text_concat([np.int64(3), np.float32(2.5), np.bool_(True)], "|") == "3|2.5|true"
    assert text_concat(np.array([1, 2, 3])) == "123"


def test_text_concat_separator_may_be_a_number_boolean_or_null():
    assert text_concat(["a", "b"], separator=0.5) == "a0.5b"
    assert text_concat(["a", "b"], separator=False) == "afalseb"
    assert text_concat(["a", "b"], separator=None) == "anullb"
    assert text_concat(["a"], separator="-") == "a"


def test_text_concat_keeps_unicode_text_unchanged():
    assert text_concat(["ß", "😀", "\n"]) == "ß😀\n"


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: text_begins(5, "a"), "data"),
        (lambda: text_contains("abc", None), "pattern"),
        (lambda: text_ends("abc", 1), "pattern"),
        (lambda: text_find("abc", "a", case_sensitive="no"), "case_sensitive"),
        (lambda: text_contains(["a", "b"], "a"), "data"),
        (lambda: text_concat("abc"), "data"),
        (lambda: text_concat([[1, 2]]), "data"),
        (lambda: text_concat([{"a": 1}]), "data"),
        (lambda: text_concat(["a"], separator=["-"]), "separator"),
    ],
)
def test_invalid_arguments_are_rejected(call, parameter):
    with pytest.raises(OpenEOError) as info:
        call()
    assert info.value.code == "ProcessParameterInvalid"
    assert f"parameter '{parameter}'" in str(info.value)


def test_cubes_are_refused_with_an_explanation():
    cube = xr.DataArray(np.array(["a", "b"]), dims="x")
    with pytest.raises(OpenEOError, match="not on the pixel values of a cube"):
        text_begins(cube, "a")
    with pytest.raises(OpenEOError, match="got a data cube"):
        text_concat(cube)
