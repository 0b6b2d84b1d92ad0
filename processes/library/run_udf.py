"""openEO process ``run_udf``: Python UDFs over cube blocks, run in confined workers (:mod:`udf`).

Where ``run_udf`` is used decides what its UDF sees and must return:

- in ``apply`` or directly on a cube: the cube block by block; the result keeps every dimension;
- in ``reduce_dimension``: blocks holding the whole reduced dimension; the result lacks it (or
  has it with length 1);
- in ``apply_dimension``: blocks holding the whole dimension; the result keeps it, with the same
  labels, or with the band labels ``apply_metadata`` declares;
- in ``apply_neighborhood``: whatever neighbourhood-shaped array that process passes.

``reduce_dimension``/``apply_dimension`` hand their callback the cube with the dimension renamed to
``ARRAY_DIM`` (``processes.model.raster_cube.along_dimension``); which of the two called, and the dimension's
own name, are read off the ``openeo:process``/``openeo:dimension`` attributes of that coordinate.
The UDF sees the dimensions under the usual openEO names (``t``, ``bands``,
``y``, ``x`` by their types; other dimensions under their own name, the worked-on one under the
name the process was given) in the order other…, t, bands, y, x; results are mapped back.

Lazy cubes become one Dask task per block (``map_blocks``): each task sends its block to a worker
and gets the result back, so blocks run in parallel on the pool's workers. Code is compiled when
the graph is built (``/validation`` included), so a syntax error is reported before anything runs.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError, UdfFailed, parameter_invalid, process_error
from processes.model.raster_cube import (
    ARRAY_DIM,
    BANDS_ATTR,
    DIMENSION_ATTR,
    PROCESS_ATTR,
    dimension_type,
    spatial_dims,
)
from udf.code import UdfCode, check_code, check_runtime, fetch_code
from udf.pool import UdfError, default_pool, worker_key

log = logging.getLogger("terracube.udf")

_ARRAY_PROCESSES = ("reduce_dimension", "apply_dimension")


def openeo_error(error: UdfError) -> OpenEOError:
    """The openEO error a user gets for a failed UDF."""
    if error.kind == "runtime":
        return process_error("InvalidRuntime", str(error))
    if error.kind == "version":
        return process_error("InvalidVersion", str(error))
    if error.kind in ("syntax", "fetch"):
        return parameter_invalid("run_udf", "udf", str(error))
    return UdfFailed(f"UDF error: {error}")


MAX_WORKSPACE_UDF_BYTES = 1024 * 1024


def _source(udf: Any, env: ProcessEnv) -> str:
    if not isinstance(udf, str) or not udf.strip():
        raise parameter_invalid("run_udf", "udf", "expected the UDF's source code or an http(s) URL to it.")
    if udf.startswith(("http://", "https://")) and "\n" not in udf.strip():
        return fetch_code(udf.strip())
    if "\n" not in udf and "\r" not in udf and "def " not in udf:  # a file of the user's workspace
        if env.user_file is None:
            raise process_error(
                "FileNotFound",
                f"The UDF '{udf}' is neither code nor an http(s) URL, so it would be a file of your workspace, "
                "and this request has none. Pass the code inline or as a URL.",
            )
        path = env.user_file(udf.strip().lstrip("/").removeprefix("./"))
        if path.stat().st_size > MAX_WORKSPACE_UDF_BYTES:
            raise parameter_invalid("run_udf", "udf", f"the file '{udf}' is larger than 1 MiB; is it really a UDF?")
        return path.read_text(encoding="utf-8")
    return udf


def run_udf(data: Any, udf: Any, runtime: Any, version: Any = None, context: Any = None, *,
            env: ProcessEnv) -> Any:
    try:
        check_runtime(runtime, version)
        code = check_code(_source(udf, env))
    except UdfError as err:
        raise openeo_error(err) from None
    context = {} if context is None else context
    if not isinstance(data, xr.DataArray):
        raise parameter_invalid(
            "run_udf", "data",
            f"this back-end runs UDFs on raster data cubes (directly, or as the child process of apply, "
            f"reduce_dimension, apply_dimension, apply_neighborhood); got {type(data).__name__}.",
        )
    key = worker_key(env.user_id, code.source)
    try:
        return _run_on_cube(data, code, key, context, env.node_id)
    except UdfError as err:
        raise openeo_error(err) from None


# --- which process called, and what the UDF sees --------------------------------------------------
def _calling_process(data: xr.DataArray) -> tuple[str, str | None]:
    """``("apply"|"reduce_dimension"|"apply_dimension", original name of ARRAY_DIM)``."""
    if ARRAY_DIM not in data.dims:
        return "apply", None
    attrs = data[ARRAY_DIM].attrs if ARRAY_DIM in data.coords else {}
    if attrs.get(PROCESS_ATTR) in _ARRAY_PROCESSES:
        return attrs[PROCESS_ATTR], attrs.get(DIMENSION_ATTR)
    return "apply_dimension", None


def _udf_names(cube: xr.DataArray, array_name: str | None) -> dict[Hashable, str]:
    """Dimension → the name the UDF sees it under (t, bands, y, x by type, else its own name)."""
    yx = spatial_dims(cube) or ()
    names: dict[Hashable, str] = {}
    for dim in cube.dims:
        kind = dimension_type(cube, dim)
        own = (array_name or "dimension") if dim == ARRAY_DIM else str(dim)
        if kind == "temporal":
            names[dim] = "t"
        elif kind == "bands":
            names[dim] = "bands"
        elif yx and dim in yx:
            names[dim] = "y" if dim == yx[0] else "x"
        else:
            names[dim] = own
    taken = list(names.values())
    for dim, name in names.items():
        if taken.count(name) > 1:  # two dims of one type: keep their own names
            names[dim] = (array_name or "dimension") if dim == ARRAY_DIM else str(dim)
    return names


_ORDER = ("t", "bands", "y", "x")


def _udf_order(names: dict[Hashable, str]) -> list[Hashable]:
    return sorted(names, key=lambda d: _ORDER.index(names[d]) + 1 if names[d] in _ORDER else 0)


def _band_labels(cube: xr.DataArray, code: UdfCode, key: str, names: dict[Hashable, str], context: Any
                 ) -> tuple[Hashable, list[str]] | None:
    """New labels of the bands dimension declared by ``apply_metadata`` (None: unchanged)."""
    if "apply_metadata" not in code.functions:
        return None
    bands = next((d for d in cube.dims if dimension_type(cube, d) == "bands"), None)
    if bands is None:
        return None
    dims = []
    for dim in cube.dims:
        kind = dimension_type(cube, dim)
        labels = [str(v) for v in cube[dim].values] if kind in ("bands", "temporal") and dim in cube.coords else []
        dims.append({"name": names[dim], "type": kind, "labels": labels})
    new_labels = default_pool().band_labels(key, code.source, dims, context)
    if new_labels is None or new_labels == [str(v) for v in cube[bands].values]:
        return None
    return bands, new_labels


# --- one block --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _BlockRun:
    """Runs the UDF on one block: a Dask task of the cube's graph (picklable for distributed)."""

    key: str
    code: str
    context: Any
    mode: str  # apply | reduce_dimension | apply_dimension
    names: tuple[str, ...]  # what the UDF calls them
    order: tuple[int, ...]  # input axes in the UDF's order
    coords: tuple[np.ndarray | None, ...]  # 1-D labels per input axis (whole cube)
    resized: int | None  # the axis whose length changes (apply_metadata), or the reduced axis
    resized_length: int | None
    dtype: np.dtype
    node_id: str | None = None  # the run_udf node, named in the error of a failing block

    def __call__(self, block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        location = block_info[0]["array-location"] if block_info else [(0, n) for n in block.shape]
        coords = {}
        for axis, (start, stop) in enumerate(location):
            labels = self.coords[axis]
            if labels is not None:
                coords[self.names[axis]] = labels[start:stop]
        try:
            values, dims, _labels, output = default_pool().run(
                self.key, self.code, np.transpose(block, self.order), [self.names[a] for a in self.order],
                coords, self.context)
            if output:
                log.info("UDF output: %s", output.rstrip())
            return self._map_back(block, values, dims).astype(self.dtype, copy=False)
        except UdfError as err:
            error = openeo_error(err)
            raise (error.with_node(self.node_id) if self.node_id else error) from None

    def _map_back(self, block: np.ndarray, values: np.ndarray, dims: list[str]) -> np.ndarray:
        given = ", ".join(f"{d}: {n}" for d, n in zip(dims, values.shape, strict=False))
        expected_axes = list(range(block.ndim))
        if self.mode == "reduce_dimension":
            assert self.resized is not None  # reduce_dimension always names the reduced axis
            reduced = self.names[self.resized]
            if reduced in dims:
                position = dims.index(reduced)
                if values.shape[position] != 1:
                    raise UdfError("user", f"In reduce_dimension the UDF must remove the dimension '{reduced}' (or "
                                           f"leave it with one value); it returned ({given}).")
                values = values.take(0, axis=position)
                dims = dims[:position] + dims[position + 1:]
            expected_axes.remove(self.resized)
        if sorted(dims) != sorted(self.names[a] for a in expected_axes) or len(set(dims)) != len(dims):
            wanted = ", ".join(self.names[a] for a in expected_axes)
            raise UdfError("user", f"The UDF must return the dimensions ({wanted}) here ({self._where()}); it "
                                   f"returned ({given}).")
        values = np.transpose(values, [dims.index(self.names[a]) for a in expected_axes])
        for position, axis in enumerate(expected_axes):
            length = self.resized_length if axis == self.resized else block.shape[axis]
            if values.shape[position] != length:
                hint = (" To change the band labels, define apply_metadata(metadata, context) returning "
                        "metadata.rename_labels('bands', target=[...]).") if axis == self.resized or \
                    self.names[axis] == "bands" else ""
                raise UdfError("user", f"The UDF returned {values.shape[position]} values along "
                                       f"'{self.names[axis]}' where {length} were expected ({self._where()}).{hint}")
        return values

    def _where(self) -> str:
        return {"apply": "apply keeps every dimension and its size",
                "reduce_dimension": "reduce_dimension removes its dimension",
                "apply_dimension": "apply_dimension keeps every dimension"}[self.mode]


def _run_on_cube(data: xr.DataArray, code: UdfCode, key: str, context: Any, node_id: str | None) -> xr.DataArray:
    mode, array_name = _calling_process(data)
    names = _udf_names(data, array_name)
    cube = data
    if code.entry_point == "apply_timeseries":
        temporal = [d for d in cube.dims if names[d] == "t"]
        if temporal and cube.chunks is not None:
            cube = cube.chunk({temporal[0]: -1})
    if mode != "apply" and cube.chunks is not None:
        cube = cube.chunk({ARRAY_DIM: -1})
    resized: int | None = None
    resized_length: int | None = None
    new_labels = None
    if mode == "reduce_dimension":
        resized = cube.dims.index(ARRAY_DIM)
    else:
        declared = _band_labels(cube, code, key, names, context)
        if declared is not None:
            bands_dim, new_labels = declared
            if cube.chunks is not None:
                cube = cube.chunk({bands_dim: -1})
            resized, resized_length = cube.dims.index(bands_dim), len(new_labels)
    order = [cube.dims.index(d) for d in _udf_order(names)]
    dtype = cube.dtype if cube.dtype.kind == "f" else np.dtype("float64")
    run = _BlockRun(
        key=key, code=code.source, context=context, mode=mode,
        names=tuple(names[d] for d in cube.dims), order=tuple(order),
        coords=tuple(np.asarray(cube[d].values) if d in cube.coords else None for d in cube.dims),
        resized=resized, resized_length=resized_length, dtype=dtype, node_id=node_id,
    )
    values: np.ndarray | da.Array
    if cube.chunks is None:
        values = run(np.asarray(cube.values))
    else:
        values = _map_blocks(run, cube.data, mode, resized, resized_length, dtype, key)
    return _as_cube(cube, values, mode, resized, new_labels)


def _map_blocks(run: _BlockRun, array: da.Array, mode: str, resized: int | None, length: int | None,
                dtype: np.dtype, key: str) -> da.Array:
    name = "run_udf-" + tokenize(array.name, key, repr(run.context), mode, resized, length)
    if mode == "reduce_dimension":
        return da.map_blocks(run, array, drop_axis=resized, dtype=dtype, name=name,
                             meta=np.empty((0,) * (array.ndim - 1), dtype))
    chunks = tuple((length,) if axis == resized else c for axis, c in enumerate(array.chunks))
    return da.map_blocks(run, array, chunks=chunks, dtype=dtype, name=name, meta=np.empty((0,) * array.ndim, dtype))


def _as_cube(cube: xr.DataArray, values, mode: str, resized: int | None, new_labels: list[str] | None):
    if mode == "reduce_dimension":
        template = cube.isel({ARRAY_DIM: 0}, drop=True)
        template = template.drop_vars([c for c in template.coords if ARRAY_DIM in cube[c].dims], errors="ignore")
        return template.copy(data=values)
    if new_labels is None:
        return cube.copy(data=values)
    assert resized is not None  # set together with new_labels (the bands axis)
    dim = cube.dims[resized]
    coord = cube[dim]
    attrs = dict(coord.attrs)
    if BANDS_ATTR in attrs:
        attrs[BANDS_ATTR] = {b: m for b, m in attrs[BANDS_ATTR].items() if b in new_labels}
    stale = [c for c in cube.coords if dim in cube[c].dims and c != dim]
    template = cube.drop_vars(stale).isel({dim: np.zeros(len(new_labels), dtype=int)})
    template = template.assign_coords({dim: xr.DataArray(np.asarray(new_labels), dims=(dim,), attrs=attrs)})
    return template.copy(data=values)


PROCESSES = {"run_udf": run_udf}
