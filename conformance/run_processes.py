"""Run the official openEO process tests in process: every case of ``tests/*.json5``, no HTTP.

Each case is one process node evaluated by :class:`processes.core.graph.Evaluator` with the real registry,
exactly as inside a process graph: literal arguments are checked against the spec's schemas, child
``process_graph`` arguments become callbacks, and arguments that JSON can't carry — data cubes
(``{"type": "datacube"}``, read with :func:`processes.formats.cube_json.cube_from_json`) and labeled arrays —
are handed over as graph parameters. The result is computed (single-threaded Dask) and compared
with the case as the official suite (openeo-test-suite, ``processing/test_example.py``) compares:

* numbers within ``delta`` (default 1e-10): relative for a single number, absolute (and 1e-9
  relative) inside arrays, objects and cubes; integers and floats are interchangeable, booleans are
  not numbers; NaN equals NaN;
* ``{"type": "nodata"}`` is null. Plain values keep null and NaN apart; in cubes and in arrays that
  come back as ``DataArray`` no-data *is* NaN, so there null and NaN are equal;
* ``{"type": "datetime"}`` equals any RFC 3339 string of the same instant;
* cubes: ``order``, dimension names, types, labels (temporal ones as instants), ``axis`` where the
  case gives it, and ``data`` unless the case says ``null``; ``reference_system`` and the ``nodata``
  entry itself are not compared (not standardised, as in the official suite), but data values equal
  to a cube's ``nodata`` (255 in an integer cube) count as no-data, which matches null and NaN;
* ``throws``: the case passes if the process raises; a code (``"DivisionByZero"``) must be the
  error's openEO ``code`` (the official suite only warns on a different code). A case with both
  ``throws`` and ``returns`` passes with either.

Experimental cases (file- or case-level ``experimental``) are not run or counted unless
``--experimental``. Cases whose process, or a process in ``required`` or in a callback, is not
registered are skipped with that reason. Every case runs under a timeout; an exception in one case
never stops the run. Failures of cases that contradict their own arguments or the spec say
``[case defect: …]`` (detected, or listed in ``KNOWN_CASE_DEFECTS``); they count as failed all the same.

    python conformance/run_processes.py [--process NAME ...] [-v] [--no-write] [--min-passed N|baseline]

The default run (no ``--process``) rewrites the section between ``<!-- processes:start -->`` and
``<!-- processes:end -->`` of ``conformance/RESULTS.md``. The last line printed is
``official process cases: N/TOTAL passed``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import functools
import json
import math
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import json5
import numpy as np
import pandas as pd
import xarray as xr

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.core.graph import Evaluator, ProcessGraph
from processes.core.registry import ProcessRegistry
from processes.formats.cube_json import cube_from_json, cube_to_json
from processes.model.raster_cube import ARRAY_DIM
from processes.model.values import to_python
from processes.process_table import build_registry

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TESTS = REPO.parent / "shared" / "conformance" / "assets" / "processes" / "tests"
RESULTS = REPO / "conformance" / "RESULTS.md"
BASELINE = REPO / "conformance" / "processes-baseline.txt"
START, END = "<!-- processes:start -->", "<!-- processes:end -->"
DEFAULT_DELTA = 1e-10
NESTED_REL_TOL = 1e-9  # DeepDiff's math_epsilon comparison keeps math.isclose's default relative tolerance
CASE_TIMEOUT = 10.0
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


# --- cases -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    process: str
    number: int
    """1-based position in the process' file."""
    level: str
    experimental: bool
    spec: Mapping[str, Any]
    """The case as written (``arguments``, ``returns``/``throws``, ``delta``, ``required``…)."""
    file: Path

    @property
    def name(self) -> str:
        return f"{self.process}#{self.number}"


@dataclass(frozen=True)
class Outcome:
    case: Case
    status: str
    """``pass``, ``fail`` or ``skip``."""
    reason: str = ""


def load_cases(root: Path, processes: set[str] | None = None) -> Iterator[Case]:
    """The cases of every ``<process>.json5`` in ``root`` (case settings before file settings)."""
    for file in sorted(root.glob("*.json5")):
        if processes and file.stem not in processes:
            continue
        try:
            document = parse_json5(file.read_text(encoding="utf-8"))
        except ValueError as err:
            print(f"warning: {file.name} is not valid JSON5 ({err}); its cases are not run", file=sys.stderr)
            continue
        for number, spec in enumerate(document.get("tests", []), start=1):
            level = spec.get("level", document.get("level", "L4"))
            experimental = bool(spec.get("experimental", document.get("experimental", False)))
            yield Case(file.stem, number, level, experimental, spec, file)


class CaseDefect(ValueError):
    """The case itself is broken (e.g. refers to a missing file)."""


def load_ref(ref: str, file: Path) -> Any:
    """An external reference of a case, relative to its file (JSON/JSON5 parsed, text as string)."""
    if "://" in ref:
        raise NotImplementedError(f"external reference {ref} is a URL; only files next to the cases are read")
    path = file.parent / ref
    if not path.exists():
        raise CaseDefect(f"the case refers to {ref}, which does not exist")
    if path.suffix not in (".json", ".json5", ".geojson", ".txt", ".wkt2"):
        raise NotImplementedError(f"external reference {ref}: only JSON, JSON5 and text files are read")
    return copy.deepcopy(_read_ref(path.resolve()))


@functools.cache
def _read_ref(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return text if path.suffix in (".txt", ".wkt2") else parse_json5(text)


def parse_json5(text: str) -> Any:
    """JSON5 text; tried as JSON first (which has NaN and Infinity too): the json5 parser is ~100x slower."""
    try:
        return json.loads(text)
    except ValueError:
        return json5.loads(text)


# --- arguments: case encoding → graph arguments and parameters ---------------------------------------


def labeled_array(obj: Mapping[str, Any]) -> xr.DataArray:
    """A ``{"type": "labeled-array"}`` as the array processes see labeled arrays: a DataArray along ARRAY_DIM."""
    keys = [entry["key"] for entry in obj["data"]]
    values = [_nodata_as_null(entry["value"]) for entry in obj["data"]]
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        data = np.array([np.nan if v is None else v for v in values], dtype=float)
    elif all(isinstance(v, bool) for v in present) and len(present) == len(values):
        data = np.array(values, dtype=bool)
    else:
        data = np.array(values, dtype=object)
    mixed = len({"number" if isinstance(k, (int, float)) else type(k).__name__ for k in keys}) > 1
    labels = np.array(keys, dtype=object if mixed else None)
    return xr.DataArray(data, dims=(ARRAY_DIM,), coords={ARRAY_DIM: labels}).chunk()


def _nodata_as_null(value: Any) -> Any:
    return None if isinstance(value, dict) and value.get("type") == "nodata" else value


def encode_arguments(value: Any, file: Path, parameters: dict[str, Any]) -> Any:
    """Case arguments as graph arguments; cubes and labeled arrays go to ``parameters`` and are referenced."""
    if isinstance(value, dict) and "$ref" in value:
        value = load_ref(value["$ref"], file)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "nodata":
            return None
        if kind == "datetime" and set(value) == {"type", "value"}:
            return value["value"]
        if kind in ("datacube", "labeled-array"):
            name = f"__case_argument_{len(parameters)}"
            parameters[name] = cube_from_json(value).chunk() if kind == "datacube" else labeled_array(value)
            return {"from_parameter": name}
        return {k: encode_arguments(v, file, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [encode_arguments(v, file, parameters) for v in value]
    return value


def callback_processes(value: Any) -> set[str]:
    """Ids of the processes used in child process graphs of the arguments."""
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("process_id"), str):
            found.add(value["process_id"])
        for v in value.values():
            found |= callback_processes(v)
    elif isinstance(value, list):
        for v in value:
            found |= callback_processes(v)
    return found


# --- results: computed values in the forms the cases use ---------------------------------------------


@dataclass(frozen=True)
class ArrayResult:
    """A 1-d ``DataArray`` along ARRAY_DIM (what array processes return for labeled arrays), computed."""

    labels: list[Any] | None
    values: list[Any]


@dataclass(frozen=True)
class CubeScalar:
    """A 0-d ``DataArray`` result, computed: a value (NaN in it is no-data) or a cube without dimensions."""

    value: Any
    array: xr.DataArray


def decode_result(result: Any) -> Any:
    """Computes lazy results; cubes become datacube JSON (``cube_to_json``)."""
    if isinstance(result, xr.DataArray):
        result = result.compute()
        if result.dims == (ARRAY_DIM,):
            labels = [to_python(v) for v in result[ARRAY_DIM].values] if ARRAY_DIM in result.coords else None
            return ArrayResult(labels, [to_python(v) for v in result.values])
        if result.ndim == 0:
            return CubeScalar(to_python(result.values.item()), result)
        return cube_to_json(result)
    if isinstance(result, (list, tuple)):
        return [decode_result(v) for v in result]
    if isinstance(result, dict):
        return {k: decode_result(v) for k, v in result.items()}
    if dask.is_dask_collection(result):
        return decode_result(result.compute())
    return to_python(result)


# --- comparison ---------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _short(value: Any, limit: int = 60) -> str:
    return _clip(repr(value), limit)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def instant(value: Any) -> pd.Timestamp | None:
    """An RFC 3339 date-time as a UTC instant (no offset counts as UTC); None if it is none."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def compare(expected: Any, actual: Any, delta: float = DEFAULT_DELTA) -> str | None:
    """Why ``actual`` (a decoded result) is not the case's ``expected`` return value; None if it is."""
    return _diff(expected, actual, delta, "", nodata_is_nan=False, single=True)


def _diff(expected: Any, actual: Any, delta: float, path: str, *, nodata_is_nan: bool,
          single: bool = False) -> str | None:
    where = f" at {path}" if path else ""
    if isinstance(expected, dict):
        kind = expected.get("type")
        if kind == "nodata":
            expected = None
        elif kind == "datetime" and "value" in expected:
            return _diff_datetime(expected["value"], actual, where)
        elif kind == "labeled-array":
            return _diff_labeled(expected, actual, delta, path)
        elif kind == "datacube":
            return _diff_cube(expected, actual, delta)
    if isinstance(actual, ArrayResult) and isinstance(expected, list):
        return _diff(expected, actual.values, delta, path, nodata_is_nan=True)
    if isinstance(actual, CubeScalar):
        actual, nodata_is_nan = actual.value, True
    if isinstance(expected, NoData) or isinstance(actual, NoData):
        # no-data on both sides (by value, null or NaN) matches; else the values as written must match
        if all(isinstance(v, NoData) or v is None or _is_nan(v) for v in (expected, actual)):
            return None
        expected = expected.value if isinstance(expected, NoData) else expected
        actual = actual.value if isinstance(actual, NoData) else actual
    if expected is None:
        if actual is None or (nodata_is_nan and _is_nan(actual)):
            return None
        return f"expected null{where}, got {_short(actual)}"
    if isinstance(expected, bool):
        if actual is expected or (nodata_is_nan and _is_number(actual) and actual == expected):
            return None
        return f"expected {str(expected).lower()}{where}, got {_short(actual)}"
    if _is_number(expected):
        return _diff_number(expected, actual, delta, where, nodata_is_nan=nodata_is_nan, single=single)
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"expected an array{where}, got {_short(actual)}"
        if len(actual) != len(expected):
            return f"expected {len(expected)} elements{where}, got {len(actual)}: {_short(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problem = _diff(e, a, delta, f"{path}[{i}]", nodata_is_nan=nodata_is_nan)
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"expected an object{where}, got {_short(actual)}"
        if set(expected) != set(actual):
            return f"expected the keys {sorted(expected)}{where}, got {sorted(actual)}"
        for key in expected:
            problem = _diff(expected[key], actual[key], delta, f"{path}.{key}", nodata_is_nan=nodata_is_nan)
            if problem:
                return problem
        return None
    if actual != expected or type(actual) is not type(expected):
        return f"expected {_short(expected)}{where}, got {_short(actual)}"
    return None


def _diff_number(expected: float, actual: Any, delta: float, where: str, *, nodata_is_nan: bool,
                 single: bool) -> str | None:
    if _is_nan(expected):
        if _is_nan(actual) or (nodata_is_nan and actual is None):
            return None
        return f"expected NaN{where}, got {_short(actual)}"
    if not _is_number(actual) or _is_nan(actual):
        return f"expected {expected!r}{where}, got {_short(actual)}"
    # A single number: pytest.approx(rel=delta); inside structures: DeepDiff's math_epsilon (absolute).
    close = (math.isclose(actual, expected, rel_tol=delta, abs_tol=1e-12) if single
             else math.isclose(actual, expected, rel_tol=NESTED_REL_TOL, abs_tol=delta))
    return None if close else f"expected {expected!r}{where}, got {actual!r}"


def _diff_datetime(expected: str, actual: Any, where: str) -> str | None:
    actual = actual.value if isinstance(actual, CubeScalar) else actual
    want, got = instant(expected), instant(actual)
    if got is None:
        return f"expected the date-time {expected}{where}, got {_short(actual)} (not an RFC 3339 date-time)"
    return None if want == got else f"expected the date-time {expected}{where}, got {actual}"


def _diff_labeled(expected: Mapping[str, Any], actual: Any, delta: float, path: str) -> str | None:
    where = f" at {path}" if path else ""
    if not isinstance(actual, ArrayResult) or actual.labels is None:
        return f"expected a labeled array{where}, got {_short(actual)}"
    keys = [entry["key"] for entry in expected["data"]]
    values = [entry["value"] for entry in expected["data"]]
    problem = _diff(keys, actual.labels, delta, f"{path}(labels)", nodata_is_nan=False)
    return problem or _diff(values, actual.values, delta, path, nodata_is_nan=True)


def _diff_cube(expected: Mapping[str, Any], actual: Any, delta: float) -> str | None:
    if isinstance(actual, CubeScalar):  # a cube without dimensions (create_data_cube)
        actual = cube_to_json(actual.array)
    if not (isinstance(actual, dict) and actual.get("type") == "datacube"):
        return f"expected a data cube, got {_short(actual)}"
    dims = expected.get("dimensions") or {}
    if isinstance(dims, list):
        dims = {d["name"]: d for d in dims}
    order = expected.get("order", list(dims))
    if list(order) != actual["order"]:
        return f"expected the dimensions {list(order)}, got {actual['order']}"
    for name in order:
        want, got = dims[name], actual["dimensions"][name]
        if want.get("type", "other") != got["type"]:
            return f"dimension {name!r}: expected type {want.get('type')}, got {got['type']}"
        if "axis" in want and want["axis"] != got.get("axis"):
            return f"dimension {name!r}: expected axis {want['axis']}, got {got.get('axis')}"
        problem = _diff_labels(want["values"], got["values"], delta, want.get("type") == "temporal")
        if problem:
            return f"dimension {name!r}: {problem}"
    if expected.get("data") is None:  # the case says the values don't matter
        return None
    want = _mark_nodata(expected["data"], _nodata_values(expected.get("nodata")))
    got = _mark_nodata(actual["data"], _nodata_values(actual.get("nodata")))
    problem = _diff(want, got, delta, "data", nodata_is_nan=True)
    return f"cube {problem}" if problem else None


@dataclass(frozen=True)
class NoData:
    """A cube value that is its cube's ``nodata`` value (e.g. 255 in an integer cube); null and NaN are too."""

    value: Any


def _nodata_values(nodata: Any) -> list[float]:
    values = nodata if isinstance(nodata, list) else [nodata]
    return [v for v in values if _is_number(v) and not math.isnan(v)]


def _mark_nodata(data: Any, nodata: list[float]) -> Any:
    if isinstance(data, list):
        return [_mark_nodata(v, nodata) for v in data]
    return NoData(data) if nodata and _is_number(data) and data in nodata else data


def _diff_labels(expected: list[Any], actual: list[Any], delta: float, temporal: bool) -> str | None:
    if temporal and len(expected) == len(actual):
        pairs = [(instant(e), instant(a)) for e, a in zip(expected, actual, strict=True)]
        if all(e is not None for e, _ in pairs):
            if all(e == a for e, a in pairs):
                return None
            return f"expected the labels {_short(expected, 120)}, got {_short(actual, 120)}"
    problem = _diff(expected, actual, delta, "", nodata_is_nan=False)
    return f"labels {problem}" if problem else None


# --- running ------------------------------------------------------------------------------------------


class CaseTimeout(BaseException):
    """Raised by the alarm inside a case that runs too long (a BaseException: processes catch Exception)."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout()


def _error_text(error: BaseException) -> str:
    code = error.code if isinstance(error, OpenEOError) else type(error).__name__
    message = " ".join(str(error).split())
    if error.__cause__ is not None and code == "Internal":  # the server log's cause, here in the report
        cause = error.__cause__
        message = f"{type(cause).__name__}: {' '.join(str(cause).split())}"
    return f"{code}: {_clip(message, 140)}" if message else code


def run_case(case: Case, registry: ProcessRegistry, evaluator: Evaluator, timeout: float = CASE_TIMEOUT) -> Outcome:
    """Run one case; never raises (bar KeyboardInterrupt). Failures of defective cases say so."""
    outcome = _run_case(case, registry, evaluator, timeout)
    note = case_defect(case.spec.get("arguments", {}), case.name) if outcome.status == "fail" else None
    return Outcome(case, "fail", f"{outcome.reason} [case defect: {note}]") if note else outcome


_SCHEMA_CONFLICT = "the argument violates the process' schema of the same openeo-processes revision"
_IEEE = "under IEEE 754 (the spec's rule)"
# Cases whose expectation contradicts their own arguments or the spec (checked by hand): their failures
# say so in RESULTS.md. Only an annotation: they still count as failed.
KNOWN_CASE_DEFECTS = {
    **{f"{p}#{n}": _SCHEMA_CONFLICT for p, ns in
       {"arccos": (6, 7, 9, 10), "arcsin": (6, 7, 9, 10), "ln": (6, 8), "log": (1, 15),
        "normalized_difference": (4,), "array_element": (8,)}.items() for n in ns},
    **{f"rename_labels#{n}": "leaves out 'target', which the spec requires" for n in (6, 8)},
    "lte#16": f"expects lte(∞, ∞) = false; it is true {_IEEE}, and gte#16 expects true",
    "product#11": f"expects NaN for 1·(−∞)·3·∞, which is −∞ {_IEEE}",
    "array_append#1": "expects [1] from appending 0 to []",
    "array_element#4": "asks for the label 'BO2' (letter O), which the array does not have",
    "array_find#7": "expects index 1 for the value at index 0",
    "array_filter#1": "passes the callback as 'process'; the spec's parameter is 'condition'",
    "filter_bands#5": "expects the bands blue, green for bands=[red, blue]",
    "rename_dimension#4": "expects the renamed dimension in the other spatial dimension's place",
    "rename_dimension#5": "expects the renamed dimension in the other spatial dimension's place",
    "mask#1": "keeps the pixels where the mask is non-zero; the spec replaces those",
    "mask#3": "keeps the pixels where the mask is non-zero; the spec replaces those",
    "mask_polygon#1": "inside=true with a polygon far from the cube, yet expects every pixel replaced",
    "mask_polygon#2": "inside=false with a polygon far from the cube, yet expects no pixel replaced",
    "aggregate_temporal_period#4": "period hour, yet expects the labels of days (2020-06-01-00 … 2020-06-04-00)",
    "aggregate_temporal_period#5": "period day, yet expects hour labels (YYYY-MM-DD-00); the spec's day label is "
                                   "YYYY-DDD",
    "aggregate_temporal#11": "expects the median of each interval, but its reducer is mean",
    "apply_dimension#2": "counts the no-data value as an element (n = 3); ignore_nodata (default true) gives the "
                         "quantiles of [192, 216]: 204, 210, 213.6",
    "apply_dimension#3": "applies over 'bands' on a cube without a bands dimension",
    **{f"aggregate_temporal#{n}": "intervals in January 2020 over data of June 2020, yet expects values"
       for n in (6, 7, 8, 9)},
    **{f"aggregate_temporal_period#{n}": "expects the aggregated dimension 't2' renamed to 't'; the spec keeps "
       "dimension names" for n in (9, 10)},
}


def case_defect(arguments: Mapping[str, Any], name: str = "") -> str | None:
    """A flaw of the case itself (that no openEO 1.x back-end can accept, or known by hand), if any."""
    if "from_argument" in repr(arguments):
        return "uses the pre-1.0 reference {\"from_argument\"} (openEO 1.x: from_parameter)"
    for parameter, value in arguments.items():
        nodes = value.values() if isinstance(value, dict) else ()
        if nodes and all(isinstance(n, dict) and "process_id" in n for n in nodes):
            return f"the child process of {parameter!r} lacks the {{\"process_graph\": …}} wrapper"
        if isinstance(value, dict) and "process_graph" in value and len(value) > 1:
            extra = ", ".join(sorted(set(value) - {"process_graph"}))
            return f"puts {extra} inside the child process of {parameter!r} instead of as arguments"
    return KNOWN_CASE_DEFECTS.get(name)


def _run_case(case: Case, registry: ProcessRegistry, evaluator: Evaluator, timeout: float) -> Outcome:
    spec = case.spec
    if case.process not in registry:
        return Outcome(case, "skip", "process not implemented")
    needed = set(spec.get("required", [])) | callback_processes(spec.get("arguments", {}))
    missing = sorted(p for p in needed if p not in registry)
    if missing:
        return Outcome(case, "skip", f"needs {', '.join(missing)} (not implemented)")
    throws, returns = spec.get("throws"), "returns" in spec
    if not throws and not returns:
        return Outcome(case, "skip", "the case gives neither returns nor throws")
    parameters: dict[str, Any] = {}
    try:
        arguments = encode_arguments(spec.get("arguments", {}), case.file, parameters)
    except NotImplementedError as err:
        return Outcome(case, "skip", str(err))
    except CaseDefect as err:
        return Outcome(case, "fail", f"[case defect: {err}]")
    except Exception as err:
        return Outcome(case, "fail", f"the case's arguments can't be read: {_error_text(err)}")
    graph = ProcessGraph({"case": {"process_id": case.process, "arguments": arguments, "result": True}}, "case")
    # The alarm interrupts Python code between bytecodes; signals work in the main thread only.
    guarded = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _on_alarm) if guarded else None
    if guarded:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        result, error = decode_result(evaluator.evaluate(graph, parameters)), None
    except CaseTimeout:
        return Outcome(case, "fail", f"timeout after {timeout:g} s")
    except Exception as err:
        result, error = None, err
    finally:
        if guarded:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if error is not None:
        if not throws:
            return Outcome(case, "fail", f"unexpected error {_error_text(error)}")
        code = error.code if isinstance(error, OpenEOError) else type(error).__name__
        if isinstance(throws, str) and code != throws:
            return Outcome(case, "fail", f"expected error {throws}, got {_error_text(error)}")
        return Outcome(case, "pass")
    if not returns:
        return Outcome(case, "fail", f"expected error {throws if isinstance(throws, str) else ''} "
                                     f"but got a result: {_short(_plain(result), 100)}".replace("  ", " "))
    try:
        expected = _resolve_refs(spec["returns"], case.file)
        problem = compare(expected, result, float(spec.get("delta", DEFAULT_DELTA)))
    except NotImplementedError as err:
        return Outcome(case, "skip", str(err))
    except Exception as err:  # a result the comparison can't take apart is a failing result
        return Outcome(case, "fail", f"the result can't be compared: {_error_text(err)}")
    return Outcome(case, "fail", problem) if problem else Outcome(case, "pass")


def _resolve_refs(value: Any, file: Path) -> Any:
    if isinstance(value, dict):
        if "$ref" in value:
            return _resolve_refs(load_ref(value["$ref"], file), file)
        return {k: _resolve_refs(v, file) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, file) for v in value]
    return value


def _plain(result: Any) -> Any:
    if isinstance(result, ArrayResult):
        return result.values
    return result.value if isinstance(result, CubeScalar) else result


def run_cases(cases: list[Case], registry: ProcessRegistry, *, verbose: bool = False,
              timeout: float = CASE_TIMEOUT) -> list[Outcome]:
    evaluator = Evaluator(registry, ProcessEnv(collections=None))
    outcomes = []
    with dask.config.set(scheduler="synchronous"), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for case in cases:
            outcome = run_case(case, registry, evaluator, timeout)
            outcomes.append(outcome)
            if verbose:
                reason = f": {outcome.reason}" if outcome.reason else ""
                print(f"{outcome.status.upper():4} {case.name} [{case.level}]{reason}", flush=True)
    return outcomes


# --- reporting ----------------------------------------------------------------------------------------


def modules_of(registry: ProcessRegistry) -> dict[str, str]:
    """Process id → the module of ``processes`` that implements it."""
    return {pid: registry[pid].implementation.__module__.rsplit(".", 1)[-1] for pid in registry}


def _numbers(cases: list[int]) -> str:
    """``#1–#3, #7``."""
    runs: list[list[int]] = []
    for n in sorted(cases):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"#{r[0]}" if len(r) == 1 else f"#{r[0]}–#{r[-1]}" for r in runs)


def results_section(outcomes: list[Outcome], modules: Mapping[str, str]) -> str:
    counted = [o for o in outcomes if not o.case.experimental]
    passed = sum(o.status == "pass" for o in counted)
    by_process: dict[str, Counter] = defaultdict(Counter)
    by_level: dict[str, Counter] = defaultdict(Counter)
    for o in counted:
        by_process[o.case.process][o.status] += 1
        by_level[o.case.level][o.status] += 1
    today = datetime.date.today().isoformat()
    lines = [
        START,
        f"## Official process tests, in process: {passed} / {len(counted)} passed ({today})",
        "",
        "Run with `make conformance` (`conformance/run_processes.py`): every non-experimental case of the",
        "openeo-processes `tests/*.json5` evaluated by the process registry directly (no HTTP), compared as the",
        "official suite's `processing/test_example.py` compares. The gate is `conformance/processes-baseline.txt`.",
        "Cases are numbered from 1 in their file; \"case defect\" marks cases that contradict their own",
        "arguments or the spec (they count as failed all the same).",
        "",
        "| level | passed | failed | skipped | total |",
        "|---|---|---|---|---|",
    ]
    for level in sorted(by_level):
        c = by_level[level]
        lines.append(f"| {level} | {c['pass']} | {c['fail']} | {c['skip']} | {sum(c.values())} |")
    lines += ["", "| process | module | passed | failed | skipped | total |", "|---|---|---|---|---|---|"]
    for process in sorted(by_process):
        c = by_process[process]
        module = modules.get(process, "—")
        lines.append(f"| {process} | {module} | {c['pass']} | {c['fail']} | {c['skip']} | {sum(c.values())} |")
    failing = [o for o in counted if o.status == "fail"]
    lines += ["", f"### Failing cases ({len(failing)})", ""]
    lines += [f"- `{o.case.name}` ({o.case.level}): {_md(o.reason)}" for o in failing] or ["None."]
    skipped: dict[tuple[str, str], list[int]] = defaultdict(list)
    for o in counted:
        if o.status == "skip":
            skipped[(o.case.process, o.reason)].append(o.case.number)
    lines += ["", f"### Skipped cases ({sum(map(len, skipped.values()))})", ""]
    lines += [f"- `{p}` {_numbers(ns)}: {_md(reason)}" for (p, reason), ns in skipped.items()] or ["None."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_results(section: str, path: Path = RESULTS) -> None:
    """Replace the delimited section of RESULTS.md (or append it), keeping everything else."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Conformance results\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def read_baseline(path: Path = BASELINE) -> int:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError) as err:
        raise SystemExit(f"--min-passed baseline: {path} must hold one integer ({err})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process", action="append", metavar="NAME", help="run only this process' cases (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case's outcome and reason")
    parser.add_argument("--no-write", action="store_true", help="don't rewrite conformance/RESULTS.md")
    parser.add_argument("--min-passed", metavar="N|baseline",
                        help="exit 1 if fewer cases pass; 'baseline' reads conformance/processes-baseline.txt")
    parser.add_argument("--record-baseline", action="store_true", help="write the pass count as the new baseline")
    parser.add_argument("--experimental", action="store_true", help="also run the experimental cases (not counted)")
    parser.add_argument("--timeout", type=float, default=CASE_TIMEOUT, help="seconds per case (default %(default)s)")
    parser.add_argument("--tests", type=Path, default=Path(os.environ.get("OPENEO_PROCESS_TESTS", DEFAULT_TESTS)),
                        help="the folder of *.json5 cases (default $OPENEO_PROCESS_TESTS or %(default)s)")
    args = parser.parse_args(argv)
    minimum = None
    if args.min_passed is not None:
        minimum = read_baseline() if args.min_passed == "baseline" else int(args.min_passed)
    if not args.tests.is_dir():
        chosen = "--tests" in (argv if argv is not None else sys.argv[1:]) or "OPENEO_PROCESS_TESTS" in os.environ
        print(f"the process tests are not at {args.tests}; set OPENEO_PROCESS_TESTS or --tests", file=sys.stderr)
        if chosen:
            return 2
        # a clone without ../shared (as users' clones): skipped with the reason, like the tests that need it
        print("official process cases: skipped (the openeo-processes test cases are not available here)")
        return 0

    registry = build_registry()
    wanted = set(args.process or [])
    cases = [c for c in load_cases(args.tests, wanted) if args.experimental or not c.experimental]
    unknown = wanted - {c.process for c in cases}
    if unknown:
        print(f"warning: no cases for {', '.join(sorted(unknown))} in {args.tests}", file=sys.stderr)
    started = time.monotonic()
    outcomes = run_cases(cases, registry, verbose=args.verbose, timeout=args.timeout)
    elapsed = time.monotonic() - started

    counted = [o for o in outcomes if not o.case.experimental]
    passed = sum(o.status == "pass" for o in counted)
    status = Counter(o.status for o in counted)
    if not args.verbose:
        for process in sorted({o.case.process for o in counted if o.status == "fail"}):
            mine = [o for o in counted if o.case.process == process]
            print(f"{process}: {sum(o.status == 'pass' for o in mine)}/{len(mine)} passed")
    print(f"{status['pass']} passed, {status['fail']} failed, {status['skip']} skipped in {elapsed:.1f} s")
    experimental = [o for o in outcomes if o.case.experimental]
    if experimental:
        print(f"experimental cases (not counted): {sum(o.status == 'pass' for o in experimental)}/"
              f"{len(experimental)} passed")
    if not args.no_write and not wanted:
        write_results(results_section(outcomes, modules_of(registry)))
        print(f"wrote {RESULTS.relative_to(REPO)}")
    if args.record_baseline and not wanted:
        BASELINE.write_text(f"{passed}\n", encoding="utf-8")
        print(f"recorded the baseline {passed} in {BASELINE.relative_to(REPO)}")
    code = 0
    sys.stdout.flush()  # the summary line below must come last, also in a merged stdout/stderr
    if minimum is not None and passed < minimum:
        print(f"FAILED: {passed} cases passed, fewer than the required {minimum}", file=sys.stderr, flush=True)
        code = 1
    print(f"official process cases: {passed}/{len(counted)} passed", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
