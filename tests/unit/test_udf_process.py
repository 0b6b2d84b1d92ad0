"""run_udf as an openEO process: in apply, reduce_dimension, apply_dimension and directly on a cube."""

from __future__ import annotations

import http.server
import platform
import threading

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.core.graph import Evaluator, parse_process_graph
from processes.model.raster_cube import new_cube
from processes.process_table import build_registry

REGISTRY = build_registry()
PYTHON = ".".join(platform.python_version_tuple()[:2])

DOUBLE = """
import xarray

def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    return cube * context.get("factor", 2)
"""

NDVI = """
import xarray

def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    nir = cube.sel(bands="B08")
    red = cube.sel(bands="B04")
    return (nir - red) / (nir + red)
"""


@pytest.fixture
def cube() -> xr.DataArray:
    rng = np.random.default_rng(1)
    values = rng.uniform(100, 3000, size=(3, 2, 12, 16)).astype("float32")
    return new_cube(
        da.from_array(values, chunks=(1, 2, 6, 8)),
        {"t": ("temporal", ["2021-06-01", "2021-06-11", "2021-06-21"]), "bands": ("bands", ["B04", "B08"]),
         "y": ("spatial", 5000.0 - 10 * np.arange(12)), "x": ("spatial", 600000.0 + 10 * np.arange(16))},
        crs=32632,
    )


def udf_node(code: str, data: dict, **extra) -> dict:
    return {"process_id": "run_udf", "arguments": {"data": data, "udf": code, "runtime": "Python", **extra},
            "result": True}


def evaluate(nodes: dict, cube: xr.DataArray, *, validate_only: bool = False, user: str = "demo", user_file=None):
    env = ProcessEnv(collections=None, user_id=user, validate_only=validate_only, user_file=user_file)
    return Evaluator(REGISTRY, env).evaluate(parse_process_graph({"process_graph": nodes}), {"cube": cube})


def in_apply(code: str, **extra) -> dict:
    child = {"udf": udf_node(code, {"from_parameter": "x"}, **extra)}
    return {"apply": {"process_id": "apply", "arguments": {"data": {"from_parameter": "cube"},
                                                           "process": {"process_graph": child}}, "result": True}}


def in_dimension_process(process_id: str, code: str, dimension: str, **extra) -> dict:
    callback = "reducer" if process_id == "reduce_dimension" else "process"
    child = {"udf": udf_node(code, {"from_parameter": "data"}, **extra)}
    return {"node": {"process_id": process_id, "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": dimension, callback: {"process_graph": child}},
        "result": True}}


def requires(process_id: str) -> None:
    if process_id not in REGISTRY:
        pytest.skip(f"{process_id} is not implemented in this checkout")


def test_run_udf_in_apply_is_lazy_and_correct(cube):
    result = evaluate(in_apply(DOUBLE), cube)
    assert isinstance(result.data, da.Array)
    assert result.dims == cube.dims
    np.testing.assert_allclose(result.values, cube.values * 2)


def test_context_reaches_the_udf(cube):
    result = evaluate(in_apply(DOUBLE, context={"factor": 5}), cube)
    np.testing.assert_allclose(result.values, cube.values * 5)


def test_run_udf_directly_on_a_cube(cube):
    result = evaluate({"udf": udf_node(DOUBLE, {"from_parameter": "cube"})}, cube)
    np.testing.assert_allclose(result.values, cube.values * 2)
    assert result.rio.crs.to_epsg() == 32632


def test_reduce_dimension_over_bands(cube):
    result = evaluate(in_dimension_process("reduce_dimension", NDVI, "bands"), cube)
    assert result.dims == ("t", "y", "x")
    nir, red = cube.sel(bands="B08").values, cube.sel(bands="B04").values
    np.testing.assert_allclose(result.values, (nir - red) / (nir + red), rtol=1e-6)


def test_reduce_dimension_over_time_sees_whole_series(cube):
    code = "def apply_datacube(cube, context):\n    assert cube.sizes['t'] == 3\n    return cube.max(dim='t')\n"
    result = evaluate(in_dimension_process("reduce_dimension", code, "t"), cube)
    assert result.dims == ("bands", "y", "x")
    np.testing.assert_allclose(result.values, cube.values.max(axis=0))


def test_reduce_dimension_accepts_a_length_one_dimension(cube):
    code = "def apply_datacube(cube, context):\n    return cube.isel(bands=[0])\n"
    result = evaluate(in_dimension_process("reduce_dimension", code, "bands"), cube)
    np.testing.assert_allclose(result.values, cube.values[:, 0])


def test_apply_dimension_over_bands_with_more_bands_declared_by_apply_metadata(cube):
    requires("apply_dimension")
    code = NDVI.replace("    return (nir - red) / (nir + red)\n", (
        "    ndvi = (nir - red) / (nir + red)\n"
        "    parts = [nir.drop_vars('bands'), red.drop_vars('bands'), ndvi]\n"
        "    return xarray.concat(parts, dim='bands').transpose(*cube.dims)\n"
        "\n"
        "def apply_metadata(metadata, context):\n"
        "    return metadata.rename_labels(dimension='bands', target=['nir', 'red', 'ndvi'])\n"
    ))
    result = evaluate(in_dimension_process("apply_dimension", code, "bands"), cube)
    assert result.sizes["bands"] == 3  # labels are 0, 1, 2 (apply_dimension's spec: the count changed)
    nir, red = cube.sel(bands="B08").values, cube.sel(bands="B04").values
    np.testing.assert_allclose(result.isel(bands=2).values, (nir - red) / (nir + red), rtol=1e-6)


def test_band_labels_declared_by_apply_metadata_on_a_cube(cube):
    code = NDVI.replace("    return (nir - red) / (nir + red)\n", (
        "    return xarray.concat([(nir - red) / (nir + red)], dim='bands').transpose(*cube.dims)\n"
        "\n"
        "def apply_metadata(metadata, context):\n"
        "    return metadata.rename_labels(dimension='bands', target=['ndvi'])\n"
    ))
    result = evaluate({"udf": udf_node(code, {"from_parameter": "cube"})}, cube)
    assert list(result["bands"].values) == ["ndvi"]
    assert result.sizes["bands"] == 1 and result.compute().notnull().all()


def test_changing_the_band_count_without_apply_metadata_is_explained(cube):
    requires("apply_dimension")
    code = "def apply_datacube(cube, context):\n    return cube.isel(bands=[0, 1, 1])\n"
    with pytest.raises(OpenEOError, match="apply_metadata"):
        evaluate(in_dimension_process("apply_dimension", code, "bands"), cube).compute()


def test_apply_dimension_over_time_with_apply_timeseries(cube):
    requires("apply_dimension")
    code = (
        "import pandas as pd\n"
        "def apply_timeseries(series: pd.Series, context: dict) -> pd.Series:\n"
        "    return series.diff().fillna(0)\n"
    )
    result = evaluate(in_dimension_process("apply_dimension", code, "t"), cube)
    expected = np.concatenate([np.zeros_like(cube.values[:1]), np.diff(cube.values, axis=0)])
    np.testing.assert_allclose(result.transpose(*cube.dims).values, expected, rtol=1e-5)


def test_udf_sees_the_usual_dimension_names_and_results_map_back(cube):
    odd = cube.rename({"t": "time", "bands": "band"})
    code = (
        "def apply_datacube(cube, context):\n"
        "    assert cube.dims == ('t', 'bands', 'y', 'x'), cube.dims\n"
        "    return cube + 1\n"
    )
    result = evaluate({"udf": udf_node(code, {"from_parameter": "cube"})}, odd)
    assert result.dims == ("time", "band", "y", "x")
    np.testing.assert_allclose(result.values, odd.values + 1)


def test_numpy_backed_cube_is_run_at_once(cube):
    small = cube.compute()
    result = evaluate({"udf": udf_node(DOUBLE, {"from_parameter": "cube"})}, small)
    np.testing.assert_allclose(result.values, small.values * 2)


def test_syntax_error_is_found_at_validation_with_its_line(cube):
    code = "import xarray\n\ndef apply_datacube(cube, context)\n    return cube\n"
    with pytest.raises(OpenEOError) as info:
        evaluate(in_apply(code), cube, validate_only=True)
    assert info.value.code == "ProcessParameterInvalid"
    assert "line 3" in info.value.message and "udf" in info.value.message


def test_user_exception_surfaces_at_compute_with_the_users_line(cube):
    code = "import xarray\n\ndef apply_datacube(cube, context):\n    raise ValueError('cloud threshold missing')\n"
    result = evaluate(in_apply(code), cube)
    with pytest.raises(OpenEOError) as info:
        result.compute()
    assert 'File "udf.py", line 4, in apply_datacube' in info.value.message
    assert "ValueError: cloud threshold missing" in info.value.message


def test_shape_change_in_apply_is_explained(cube):
    code = "def apply_datacube(cube, context):\n    return cube.isel(bands=0)\n"
    with pytest.raises(OpenEOError, match="must return the dimensions"):
        evaluate(in_apply(code), cube).compute()


@pytest.mark.parametrize("runtime", ["Python", "python", "PYTHON"])
def test_runtime_name_is_case_insensitive(cube, runtime):
    result = evaluate({"udf": {**udf_node(DOUBLE, {"from_parameter": "cube"}),
                               "arguments": {"data": {"from_parameter": "cube"}, "udf": DOUBLE, "runtime": runtime,
                                             "version": PYTHON}}}, cube, validate_only=True)
    assert result.dims == cube.dims


def test_unknown_runtime(cube):
    nodes = {"udf": {**udf_node(DOUBLE, {"from_parameter": "cube"})}}
    nodes["udf"]["arguments"]["runtime"] = "R"
    with pytest.raises(OpenEOError) as info:
        evaluate(nodes, cube, validate_only=True)
    assert info.value.code == "InvalidRuntime" and "'Python'" in info.value.message


def test_unknown_version(cube):
    with pytest.raises(OpenEOError) as info:
        evaluate({"udf": udf_node(DOUBLE, {"from_parameter": "cube"}, version="2.7")}, cube, validate_only=True)
    assert info.value.code == "InvalidVersion" and PYTHON in info.value.message


def test_a_path_without_a_workspace_is_file_not_found(cube):
    with pytest.raises(OpenEOError) as info:
        evaluate({"udf": udf_node("udfs/my_udf.py", {"from_parameter": "cube"})}, cube, validate_only=True)
    assert info.value.code == "FileNotFound"


def test_a_udf_from_the_users_workspace(cube, tmp_path):
    import io

    from backend.workspace import Workspace

    workspace = Workspace(tmp_path, "demo")
    workspace.put("udfs/double.py", io.BytesIO(DOUBLE.encode()))
    nodes = {"udf": udf_node("/udfs/double.py", {"from_parameter": "cube"})}
    result = evaluate(nodes, cube, user_file=workspace.resolve)
    np.testing.assert_allclose(result.values, cube.values * 2)
    with pytest.raises(OpenEOError) as info:
        evaluate({"udf": udf_node("udfs/missing.py", {"from_parameter": "cube"})}, cube, user_file=workspace.resolve)
    assert info.value.code == "FileNotFound"


@pytest.fixture
def code_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/double.py":
                body = DOUBLE.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_udf_code_from_a_url(cube, code_server):
    result = evaluate({"udf": udf_node(f"{code_server}/double.py", {"from_parameter": "cube"})}, cube)
    np.testing.assert_allclose(result.values, cube.values * 2)


def test_udf_url_that_fails(cube, code_server):
    with pytest.raises(OpenEOError) as info:
        evaluate({"udf": udf_node(f"{code_server}/missing.py", {"from_parameter": "cube"})}, cube)
    assert info.value.code == "ProcessParameterInvalid" and "404" in info.value.message


def test_plain_values_are_refused(cube):
    with pytest.raises(OpenEOError, match="raster data cubes"):
        evaluate({"udf": udf_node(DOUBLE, [1, 2, 3])}, cube)


def test_udf_runtimes_lists_python_with_its_libraries(tmp_path):
    from backend.app import create_app
    from backend.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, users={"demo": "demo"}, secret="s" * 40, stac=(), demo=False))
    document = app.test_client().get("/openeo/1.2/udf_runtimes").json
    python = document["Python"]
    assert python["type"] == "language"
    assert python["default"] == PYTHON
    libraries = python["versions"][PYTHON]["libraries"]
    assert {"numpy", "xarray", "pandas", "scipy", "openeo"} <= set(libraries)
    assert libraries["numpy"]["version"] == np.__version__


WINDOW_ANOMALY = """
import xarray

def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    # each value minus the mean of its whole neighbourhood (overlap included): depends on the window
    return cube - cube.mean(dim=("y", "x"))
"""


def test_run_udf_in_apply_neighborhood_with_overlap(cube):
    size = [{"dimension": "x", "value": 8, "unit": "px"}, {"dimension": "y", "value": 6, "unit": "px"}]
    overlap = [{"dimension": "x", "value": 2, "unit": "px"}, {"dimension": "y", "value": 2, "unit": "px"}]
    child = {"udf": udf_node(WINDOW_ANOMALY, {"from_parameter": "data"})}
    nodes = {"n": {"process_id": "apply_neighborhood", "arguments": {
        "data": {"from_parameter": "cube"}, "process": {"process_graph": child}, "size": size, "overlap": overlap},
        "result": True}}
    result = evaluate(nodes, cube).compute()
    values = cube.values
    expected = np.empty_like(values)
    padded = np.pad(values, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=np.nan)
    for y0 in (0, 6):
        for x0 in (0, 8):
            window = padded[:, :, y0:y0 + 10, x0:x0 + 12]  # the 6 × 8 core and 2 px around it
            mean = np.nanmean(window, axis=(2, 3), keepdims=True)
            expected[:, :, y0:y0 + 6, x0:x0 + 8] = values[:, :, y0:y0 + 6, x0:x0 + 8] - mean
    np.testing.assert_allclose(result.transpose(*cube.dims).values, expected, rtol=1e-5, atol=1e-3)
