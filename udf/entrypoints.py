"""The ``openeo.udf`` contract, run inside a UDF worker: find the UDF's entry point and call it.

A UDF written for another openEO back-end runs unchanged. Its code is executed in a module
namespace pre-filled like ``openeo.udf.run_code`` does (``np``, ``xarray``, ``XarrayDataCube``, …),
then the first function defined by the code that matches one of these signatures is called:

- ``apply_datacube(cube, context)`` / ``apply_hypercube(cube, context)``: ``cube`` is an
  ``xarray.DataArray`` when annotated so (or not annotated), an ``XarrayDataCube`` when annotated
  ``XarrayDataCube``; either kind may be returned;
- ``apply_timeseries(series: pandas.Series, context) -> pandas.Series``: called per pixel (and per
  band) with the values along ``t`` as a Series indexed by date;
- a function taking one parameter annotated ``UdfData`` (``apply_udf_data``): it modifies the
  ``UdfData`` in place (``set_datacube_list``);
- ``apply_metadata(metadata, context)`` is not an entry point but tells the new band labels.

Errors are reported with the user's own traceback lines: only frames of the UDF's code are kept.
"""

from __future__ import annotations

import inspect
import linecache
import math
import traceback
from collections.abc import Callable
from typing import Any

import numpy
import pandas
import xarray

UDF_FILENAME = "udf.py"
ENTRY_POINTS = ("apply_datacube", "apply_hypercube", "apply_timeseries")


class UdfUserError(Exception):
    """The UDF failed (its exception, or a broken contract); ``str()`` is the message for the user."""


class UdfMemoryError(UdfUserError):
    """The UDF ran out of memory (its allocation failed under the worker's memory limit)."""


def execution_namespace() -> dict[str, Any]:
    from openeo.udf import FeatureCollection, StructuredData, UdfData, XarrayDataCube

    namespace: dict[str, Any] = {
        "__name__": "udf", "__file__": UDF_FILENAME, "__builtins__": __builtins__,
        "numpy": numpy, "np": numpy, "xarray": xarray, "pandas": pandas, "pd": pandas, "math": math,
        "UdfData": UdfData, "XarrayDataCube": XarrayDataCube, "DataCube": XarrayDataCube,
        "StructuredData": StructuredData, "FeatureCollection": FeatureCollection,
    }
    try:
        import shapely

        namespace["shapely"] = shapely
    except ImportError:
        pass
    return namespace


def load_code(code: str) -> dict[str, Any]:
    """Compile and run the UDF's module code; its tracebacks show the UDF's source lines."""
    lines = code.splitlines(keepends=True)
    linecache.cache[UDF_FILENAME] = (len(code), None, lines, UDF_FILENAME)
    namespace = execution_namespace()
    try:
        compiled = compile(code, UDF_FILENAME, "exec")
        exec(compiled, namespace)
    except SyntaxError as exc:
        raise UdfUserError(syntax_error_message(exc)) from None
    except BaseException as exc:  # noqa: BLE001 - the user's module code failed, whatever it raised
        raise UdfUserError(user_traceback(exc, "The UDF failed while being loaded")) from None
    return namespace


def syntax_error_message(exc: SyntaxError) -> str:
    where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
    text = (exc.text or "").rstrip("\n")
    pointer = f"\n    {text}\n    {' ' * max((exc.offset or 1) - 1, 0)}^" if text else ""
    return f"The UDF code has a syntax error at {where}: {exc.msg}{pointer}"


def user_traceback(exc: BaseException, headline: str) -> str:
    """``headline``, the frames of the UDF's own code, and the exception line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == UDF_FILENAME]
    lines = [f"{headline}:", "Traceback (most recent call last):"]
    lines.extend(line.rstrip("\n") for line in traceback.format_list(frames))
    lines.extend(line.rstrip("\n") for line in traceback.format_exception_only(type(exc), exc))
    return "\n".join(lines)


def _defined_functions(namespace: dict[str, Any]) -> list[tuple[str, Callable]]:
    return [
        (name, value) for name, value in namespace.items()
        if inspect.isfunction(value) and value.__code__.co_filename == UDF_FILENAME
    ]


def _annotation_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1]
    return getattr(annotation, "__name__", str(annotation))


def find_entry_point(namespace: dict[str, Any]) -> tuple[str, Callable]:
    """``(kind, function)`` with kind ``datacube``, ``timeseries`` or ``udf_data``."""
    for name, func in _defined_functions(namespace):
        try:
            params = inspect.signature(func).parameters
        except (TypeError, ValueError):
            continue
        if name in ("apply_datacube", "apply_hypercube") and "cube" in params:
            return "datacube", func
        if name == "apply_timeseries" and "series" in params:
            return "timeseries", func
        first = next(iter(params.values()), None)
        if len(params) == 1 and first is not None and _annotation_name(first.annotation) == "UdfData":
            return "udf_data", func
    raise UdfUserError(
        "No UDF entry point found. Define one of: apply_datacube(cube: xarray.DataArray, context: dict) -> "
        "xarray.DataArray, apply_timeseries(series: pandas.Series, context: dict) -> pandas.Series, or a "
        "function taking one parameter annotated UdfData (see openeo.udf.udf_signatures)."
    )


def apply_udf(namespace: dict[str, Any], cube: xarray.DataArray, context: Any) -> xarray.DataArray:
    """Run the UDF's entry point on ``cube``; returns what it made of it as a DataArray."""
    from openeo.udf import UdfData, XarrayDataCube

    kind, func = find_entry_point(namespace)
    try:
        if kind == "datacube":
            wants_wrapper = _annotation_name(inspect.signature(func).parameters["cube"].annotation) in (
                "XarrayDataCube", "DataCube")
            argument = XarrayDataCube(cube) if wants_wrapper else cube
            result = _call(func, cube=argument, context=context)
        elif kind == "timeseries":
            result = _apply_timeseries(func, cube, context)
        else:
            data = UdfData(datacube_list=[XarrayDataCube(cube)], user_context=context)
            returned = func(data)
            data = returned if isinstance(returned, UdfData) else data
            cubes = data.get_datacube_list() or []
            if len(cubes) != 1:
                raise UdfUserError(f"The UDF must leave exactly one data cube in its UdfData, not {len(cubes)}.")
            result = cubes[0]
    except UdfUserError:
        raise
    except MemoryError as exc:
        raise UdfMemoryError(user_traceback(exc, "The UDF ran out of memory")) from None
    except BaseException as exc:  # noqa: BLE001 - whatever the user's code raised, report it
        raise UdfUserError(user_traceback(exc, f"The UDF raised {type(exc).__name__}")) from None
    return as_data_array(result, cube)


def _call(func: Callable, **arguments: Any) -> Any:
    params = inspect.signature(func).parameters
    if "context" not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        arguments.pop("context")
    return func(**arguments)


def _apply_timeseries(func: Callable, cube: xarray.DataArray, context: Any) -> xarray.DataArray:
    time_dims = [d for d in cube.dims if d in ("t", "time")]
    if not time_dims:
        raise UdfUserError(
            f"apply_timeseries needs a temporal dimension 't'; the UDF got dimensions {list(cube.dims)}."
        )
    moved = cube.transpose(..., time_dims[0])
    index = pandas.DatetimeIndex(moved[time_dims[0]].values)
    rows = numpy.asarray(moved.values).reshape(-1, moved.shape[-1])
    out = None
    for i, row in enumerate(rows):
        series = _call(func, series=pandas.Series(row, index=index), context=context)
        values = numpy.asarray(series)
        if values.shape != (len(index),):
            raise UdfUserError(
                f"apply_timeseries must return a series of the same length ({len(index)}), "
                f"it returned shape {values.shape}."
            )
        if out is None:
            out = numpy.empty(rows.shape, dtype=numpy.result_type(values.dtype, numpy.float32))
        out[i] = values
    if out is None:
        out = numpy.empty(rows.shape, dtype=numpy.float32)
    result = xarray.DataArray(out.reshape(moved.shape), dims=moved.dims, coords=moved.coords)
    return result.transpose(*cube.dims)


def as_data_array(result: Any, template: xarray.DataArray) -> xarray.DataArray:
    from openeo.udf import XarrayDataCube

    if isinstance(result, XarrayDataCube):
        result = result.get_array()
    if isinstance(result, xarray.DataArray):
        return result
    if isinstance(result, numpy.ndarray) and result.shape == template.shape:
        return xarray.DataArray(result, dims=template.dims, coords=template.coords)
    raise UdfUserError(
        f"The UDF returned {type(result).__name__}; it must return an xarray.DataArray (or an XarrayDataCube)."
    )


def band_labels_from_metadata(namespace: dict[str, Any], dims: list[dict[str, Any]], context: Any) -> list | None:
    """The band labels ``apply_metadata(metadata, context)`` declares, or None without that function."""
    func = namespace.get("apply_metadata")
    if not inspect.isfunction(func) or func.__code__.co_filename != UDF_FILENAME:
        return None
    from openeo.metadata import (
        Band,
        BandDimension,
        CollectionMetadata,
        Dimension,
        SpatialDimension,
        TemporalDimension,
    )

    dimensions: list[Dimension] = []
    extent: list[Any]  # openeo annotates extents as pairs of str/float, but one may be unknown: [None, None]
    for dim in dims:
        if dim["type"] == "bands":
            dimensions.append(BandDimension(dim["name"], bands=[Band(str(b)) for b in dim["labels"]]))
        elif dim["type"] == "temporal":
            labels = dim["labels"]
            extent = [labels[0], labels[-1]] if labels else [None, None]
            dimensions.append(TemporalDimension(dim["name"], extent))
        elif dim["type"] == "spatial":
            extent = [None, None]
            dimensions.append(SpatialDimension(dim["name"], extent=extent))
        else:
            dimensions.append(Dimension(type=dim["type"], name=dim["name"]))
    metadata = CollectionMetadata({}, dimensions=dimensions)
    try:
        result = _call(func, metadata=metadata, context=context)
        result = metadata if result is None else result
        return [str(name) for name in result.band_dimension.band_names]
    except BaseException as exc:  # noqa: BLE001
        raise UdfUserError(user_traceback(exc, f"apply_metadata raised {type(exc).__name__}")) from None
