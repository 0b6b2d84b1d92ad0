"""The in-process runner of the official process tests (``conformance/run_processes.py``)."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from pathlib import Path

import pytest

from processes.core.env import ProcessEnv
from processes.core.graph import Evaluator
from processes.core.registry import ProcessRegistry
from processes.process_table import build_registry

REPO = Path(__file__).resolve().parents[2]


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_processes", REPO / "conformance" / "run_processes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_processes"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


rp = _load_runner()
CASES = Path(os.environ.get("OPENEO_PROCESS_TESTS", rp.DEFAULT_TESTS))
NAN = float("nan")

CUBE = {
    "type": "datacube",
    "nodata": None,
    "order": ["bands", "y", "x"],
    "dimensions": {
        "bands": {"type": "bands", "values": ["red", "nir"]},
        "y": {"type": "spatial", "axis": "y", "values": [20.0, 10.0], "reference_system": "EPSG:25832"},
        "x": {"type": "spatial", "axis": "x", "values": [5.0], "reference_system": "EPSG:25832"},
    },
    "data": [[[1.5], [None]], [[3.0], [4.25]]],
}


def needs_cases() -> Path:
    if not CASES.is_dir():
        pytest.skip(f"needs the openEO process test cases at {CASES} (set OPENEO_PROCESS_TESTS)")
    return CASES


def decoded_cube(obj=CUBE):
    return rp.decode_result(rp.cube_from_json(obj).chunk())


def case(process: str, spec: dict, file: Path = REPO / "x.json5") -> rp.Case:
    return rp.Case(process, 1, "L1", False, spec, file)


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def run(registry, process: str, spec: dict, timeout: float = rp.CASE_TIMEOUT) -> rp.Outcome:
    evaluator = Evaluator(registry, ProcessEnv(collections=None))
    return rp.run_case(case(process, spec), registry, evaluator, timeout)


# --- comparison -------------------------------------------------------------------------------------


def test_nan_equals_nan():
    assert rp.compare(NAN, NAN) is None
    assert rp.compare([1, NAN], [1.0, NAN]) is None


def test_nan_is_not_a_number_result():
    assert "expected NaN" in rp.compare(NAN, 1.0)
    assert "expected 1.0" in rp.compare(1.0, NAN)


def test_plain_null_and_nan_differ():
    assert rp.compare(None, NAN) is not None
    assert rp.compare(NAN, None) is not None
    assert rp.compare({"type": "nodata"}, None) is None


def test_nodata_of_a_cube_value_is_nan():
    scalar = rp.decode_result(rp.labeled_array({"type": "labeled-array", "data": [{"key": "a", "value": None}]})[0])
    assert isinstance(scalar, rp.CubeScalar)
    assert rp.compare({"type": "nodata"}, scalar) is None


def test_single_numbers_compare_relatively_within_delta():
    assert rp.compare(100.0, 105.0, delta=0.1) is None
    assert rp.compare(100.0, 115.0, delta=0.1) is not None
    assert rp.compare(1.0, 1.0 + 1e-12) is None
    assert rp.compare(1.0, 1.0001) is not None


def test_numbers_inside_arrays_compare_absolutely_within_delta():
    assert rp.compare([0.0], [5e-11]) is None
    assert rp.compare([0.0], [1e-9]) is not None
    assert rp.compare([10.0, 20.0], [10.04, 20.0], delta=0.05) is None


def test_integers_and_floats_are_interchangeable_booleans_are_not_numbers():
    assert rp.compare(2, 2.0) is None
    assert rp.compare(True, 1) is not None
    assert rp.compare(1, True) is not None
    assert rp.compare([True, False], [True, False]) is None


def test_arrays_need_the_same_length():
    assert "expected 2 elements" in rp.compare([1, 2], [1, 2, 3])


def test_datetimes_compare_as_instants():
    expected = {"type": "datetime", "value": "2021-03-24T00:00:00+02:00"}
    assert rp.compare(expected, "2021-03-23T22:00:00Z") is None
    assert rp.compare(expected, "2021-03-23T22:00:00.000Z") is None
    assert rp.compare(expected, "2021-03-24T00:00:00Z") is not None
    assert "not an RFC 3339 date-time" in rp.compare(expected, "2021-03-23")


def test_labeled_arrays_compare_labels_and_values():
    array = rp.decode_result(rp.labeled_array({"type": "labeled-array", "data": [
        {"key": "B01", "value": 1.5}, {"key": "B02", "value": {"type": "nodata"}}]}))
    expected = {"type": "labeled-array", "data": [{"key": "B01", "value": 1.5}, {"key": "B02", "value": None}]}
    assert rp.compare(expected, array) is None
    assert rp.compare([1.5, None], array) is None  # an array result without caring for the labels
    renamed = {"type": "labeled-array", "data": [{"key": "B01", "value": 1.5}, {"key": "B03", "value": None}]}
    assert "labels" in rp.compare(renamed, array)
    assert "expected a labeled array" in rp.compare(expected, [1.5, None])


def test_a_cube_equals_its_datacube_json():
    assert rp.compare(CUBE, decoded_cube()) is None


def test_cube_data_differences_name_the_position():
    changed = {**CUBE, "data": [[[1.5], [None]], [[3.0], [4.5]]]}
    assert "data[1][1][0]" in rp.compare(changed, decoded_cube())


def test_cube_nodata_null_equals_nan():
    nan_cube = {**CUBE, "nodata": NAN, "data": [[[1.5], [NAN]], [[3.0], [4.25]]]}
    assert rp.compare(nan_cube, decoded_cube()) is None


def test_cube_nodata_value_matches_no_data():
    expected = {**CUBE, "nodata": 255, "data": [[[1.5], [255]], [[3.0], [4.25]]]}
    assert rp.compare(expected, decoded_cube()) is None


def test_cube_reference_system_is_not_compared_and_null_data_is_not_compared():
    dims = {name: {k: v for k, v in dim.items() if k != "reference_system"} for name, dim in CUBE["dimensions"].items()}
    assert rp.compare({**CUBE, "dimensions": dims, "data": None}, decoded_cube()) is None


def test_cube_dimension_order_type_and_labels_are_compared():
    assert "expected the dimensions" in rp.compare({**CUBE, "order": ["bands", "x", "y"]}, decoded_cube())
    other = {**CUBE["dimensions"], "bands": {"type": "other", "values": ["red", "nir"]}}
    assert "expected type other" in rp.compare({**CUBE, "dimensions": other}, decoded_cube())
    relabeled = {**CUBE["dimensions"], "bands": {"type": "bands", "values": ["red", "swir"]}}
    assert "dimension 'bands'" in rp.compare({**CUBE, "dimensions": relabeled}, decoded_cube())


def test_cube_temporal_labels_compare_as_instants():
    cube = {
        "type": "datacube", "order": ["t"], "data": [1.0, 2.0],
        "dimensions": {"t": {"type": "temporal", "values": ["2020-06-01T00:00:00Z", "2020-06-03T00:00:00Z"]}},
    }
    written_otherwise = {**cube, "dimensions": {"t": {"type": "temporal", "values": [
        "2020-06-01T02:00:00+02:00", "2020-06-03T00:00:00.000Z"]}}}
    assert rp.compare(written_otherwise, decoded_cube(cube)) is None


def test_a_plain_value_is_no_cube():
    assert "expected a data cube" in rp.compare(CUBE, [1, 2])


# --- running cases ----------------------------------------------------------------------------------


def test_expected_error_code_must_match(registry):
    spec = {"arguments": {"data": [1, 2], "index": 5}}
    assert run(registry, "array_element", {**spec, "throws": "ArrayElementNotAvailable"}).status == "pass"
    outcome = run(registry, "array_element", {**spec, "throws": "LabelExists"})
    assert outcome.status == "fail"
    assert "expected error LabelExists, got ArrayElementNotAvailable" in outcome.reason


def test_throws_true_takes_any_error(registry):
    assert run(registry, "array_element", {"arguments": {"data": [1], "index": 3}, "throws": True}).status == "pass"


def test_a_result_where_an_error_is_expected_fails(registry):
    outcome = run(registry, "add", {"arguments": {"x": 1, "y": 2}, "throws": "DivisionByZero"})
    assert outcome.status == "fail" and "expected error DivisionByZero" in outcome.reason


def test_an_unexpected_error_fails_with_its_code(registry):
    outcome = run(registry, "array_element", {"arguments": {"data": [1], "index": 3}, "returns": 1})
    assert outcome.status == "fail" and "unexpected error ArrayElementNotAvailable" in outcome.reason


def test_callbacks_nodata_and_context_are_built(registry):
    spec = {
        "arguments": {
            "data": [1, 5, {"type": "nodata"}, 7],
            "condition": {"process_graph": {"gt": {
                "process_id": "gt", "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "context"}},
                "result": True}}},
            "context": 4,
        },
        "returns": 2,
    }
    assert run(registry, "count", spec).status == "pass"


def test_cube_arguments_are_passed_as_cubes(registry):
    spec = {"arguments": {"x": CUBE, "y": 1}, "returns": {**CUBE, "data": [[[2.5], [None]], [[4.0], [5.25]]]}}
    assert run(registry, "add", spec).status == "pass"


def test_missing_processes_skip_the_case(registry):
    spec = {"arguments": {"x": 1}, "returns": 1, "required": ["no_such_process"]}
    assert run(ProcessRegistry(), "absolute", spec) == rp.Outcome(case("absolute", spec), "skip",
                                                                  "process not implemented")
    assert run(registry, "absolute", spec).reason == "needs no_such_process (not implemented)"


def test_a_case_that_runs_too_long_fails_and_the_run_goes_on():
    def slow_absolute(x):
        time.sleep(5)
        return abs(x)

    slow = ProcessRegistry()
    slow.add("absolute", slow_absolute)
    started = time.monotonic()
    outcome = run(slow, "absolute", {"arguments": {"x": -1}, "returns": 1}, timeout=0.2)
    assert outcome.status == "fail" and "timeout" in outcome.reason
    assert time.monotonic() - started < 2


def test_a_crashing_process_fails_only_its_case():
    def broken_absolute(x):
        raise ZeroDivisionError("boom")

    broken = ProcessRegistry()
    broken.add("absolute", broken_absolute)
    broken.add("sgn", lambda x: 1 if x > 0 else 0)
    cases = [case("absolute", {"arguments": {"x": 1}, "returns": 1}),
             case("sgn", {"arguments": {"x": 2}, "returns": 1})]
    outcomes = rp.run_cases(cases, broken)
    assert [o.status for o in outcomes] == ["fail", "pass"]
    assert "Internal" in outcomes[0].reason and "boom" in outcomes[0].reason


def test_defective_cases_are_labelled(registry):
    spec = {"arguments": {"data": [1], "process": {"process_graph": {"a": {
        "process_id": "absolute", "arguments": {"x": {"from_argument": "x"}}, "result": True}}}}, "returns": [1]}
    assert "case defect" in run(registry, "array_apply", spec).reason


# --- results and the command line -------------------------------------------------------------------


def test_results_section_replaces_only_its_part(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Conformance\n\nHTTP results.\n\n{rp.START}\nold\n{rp.END}\n\n## Later\n")
    outcomes = [rp.Outcome(case("add", {}), "pass"), rp.Outcome(rp.Case("add", 2, "L1", False, {}, Path()), "fail",
                                                                 "expected 1, got 2")]
    rp.write_results(rp.results_section(outcomes, {"add": "math"}), results)
    text = results.read_text()
    assert text.startswith("# Conformance\n\nHTTP results.\n\n")
    assert text.endswith("## Later\n") and "old" not in text
    assert "| add | math | 1 | 1 | 0 | 2 |" in text
    assert "- `add#2` (L1): expected 1, got 2" in text


def test_the_section_is_appended_where_there_is_none(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Conformance\n")
    rp.write_results(rp.results_section([], {}), results)
    assert results.read_text().startswith(f"# Conformance\n\n{rp.START}")


def test_experimental_cases_are_not_counted():
    root = needs_cases()
    cases = list(rp.load_cases(root))
    assert sum(not c.experimental for c in cases) == 953  # the official count at this revision


def test_add_and_sort_pass_all_their_cases(capsys):
    root = needs_cases()
    code = rp.main(["--tests", str(root), "--process", "add", "--process", "sort", "--no-write", "--min-passed", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    total = sum(1 for c in rp.load_cases(root, {"add", "sort"}) if not c.experimental)
    assert code == 0
    assert lines[-1] == f"official process cases: {total}/{total} passed"


def test_min_passed_fails_the_run(capsys):
    root = needs_cases()
    assert rp.main(["--tests", str(root), "--process", "add", "--no-write", "--min-passed", "1000"]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("official process cases: ")


def test_math_of_the_nested_tolerance_is_deepdiffs():
    # DeepDiff's math_epsilon keeps math.isclose's relative tolerance, so large numbers aren't held to 1e-10
    assert math.isclose(1e12, 1e12 + 1, rel_tol=rp.NESTED_REL_TOL)
    assert rp.compare([1e12], [1e12 + 1]) is None


def test_without_the_cases_the_default_run_is_skipped_but_a_chosen_folder_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENEO_PROCESS_TESTS", raising=False)
    monkeypatch.setattr(rp, "DEFAULT_TESTS", tmp_path / "absent")
    assert rp.main(["--no-write", "--min-passed", "baseline"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("official process cases: skipped")
    assert rp.main(["--no-write", "--tests", str(tmp_path / "absent")]) == 2
