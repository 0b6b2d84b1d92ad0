"""apply_kernel and apply_neighborhood on small Dask cubes, through the real evaluator and registry."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.ndimage

from processes.core.errors import DimensionNotAvailable, OpenEOError
from processes.library.neighborhood import apply_kernel, apply_neighborhood
from processes.model.raster_cube import ARRAY_DIM, dimension_type, new_cube
from tests.processes import run_node as run

# The cube and two expected results of the official openEO tests (apply_kernel.json5,
# assets/xyt-minimal-float.json5).
MINIMAL = [
    [[17.5, 53.75, -27.1, -64.25], [-18.0, 8.45, -3.11, -20.5], [50.4, 49.24, 25.16, -81.6]],
    [[-63.65, 9.0, -68.52, -8.0], [1.05, -63.8, 73.05, 51.05], [47.86, -21.30, np.nan, 46.15]],
]
GAUSS = [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
OFFICIAL_DEFAULT = [
    [[149.95, 191.59, -147.67, -355.31], [183.69, 263.52, -83.28, -381.86], [272.53, 343.87, 17.65, -320.19]],
    [[-298.3, -281.84, -138.73, 6.11], [-167.28, -215.91, 155.51, 358.08], [87.14, -42.98, 183.05, 359.75]],
]
OFFICIAL_WRAP = [
    [[69.39, 365.63, -129.71, -425.95], [-3.16, 263.52, -83.28, -349.96], [113.33, 441.77, -47.05, -375.49]],
    [[-142.68, -276.58, -113.88, 20.02], [-27.03, -215.91, 155.51, 344.39], [104.19, -157.15, 47.01, 308.35]],
]


def minimal_cube():
    return new_cube(
        np.array(MINIMAL),
        {
            "t": ("temporal", ["2020-06-01T00:00:00Z", "2020-06-03T00:00:00Z"]),
            "y": ("spatial", [5757495.0, 5757485.0, 5757475.0]),
            "x": ("spatial", [404835.0, 404845.0, 404855.0, 404865.0]),
        },
        crs=25832,
    )


def random_cube(shape=(2, 3, 23, 31), chunks=(1, 3, 8, 10), seed=0):
    values = np.random.default_rng(seed).uniform(-10, 10, shape)
    values[0, 1, 4, 5] = np.nan
    t, b, h, w = shape
    cube = new_cube(
        da.from_array(values, chunks=chunks),
        {
            "t": ("temporal", pd.date_range("2023-01-01", periods=t, freq="5D")),
            "bands": ("bands", [f"B{i}" for i in range(b)]),
            "y": ("spatial", 5_000_000 - 5 - 10.0 * np.arange(h)),
            "x": ("spatial", 400_005 + 10.0 * np.arange(w)),
        },
        crs=32633,
    )
    return cube, values


def child(nodes: dict) -> dict:
    return {"process_graph": nodes}


def pixels(dim: str, value, unit="px") -> dict:
    return {"dimension": dim, "value": value, "unit": unit}


# --- apply_kernel ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("border", "expected"), [(0, OFFICIAL_DEFAULT), ("wrap", OFFICIAL_WRAP)])
def test_apply_kernel_matches_the_official_results(border, expected):
    result = run("apply_kernel", data=minimal_cube(), kernel=GAUSS, border=border)
    np.testing.assert_allclose(result.values, expected, atol=1e-9)


@pytest.mark.parametrize(
    ("border", "mode", "cval"),
    [(0, "constant", 0.0), (3.5, "constant", 3.5), ("replicate", "nearest", 0.0), ("reflect", "reflect", 0.0),
     ("reflect_pixel", "mirror", 0.0), ("wrap", "wrap", 0.0)],
)
def test_apply_kernel_on_many_chunks_equals_one_correlation_of_the_whole_plane(border, mode, cval):
    cube, values = random_cube()
    kernel = np.arange(35, dtype=float).reshape(5, 7) - 10  # asymmetric: correlation, not convolution
    result = run("apply_kernel", data=cube, kernel=kernel.tolist(), border=border, factor=0.5)
    expected = scipy.ndimage.correlate(np.nan_to_num(values, nan=0.0), kernel[None, None], mode=mode, cval=cval) * 0.5
    np.testing.assert_allclose(result.values, expected, rtol=1e-12, atol=1e-9)


def test_apply_kernel_wider_than_the_cube_on_many_chunks():
    cube, values = random_cube(shape=(1, 2, 5, 6), chunks=(1, 1, 2, 2))
    kernel = np.random.default_rng(0).random((13, 9))
    result = apply_kernel(cube, kernel.tolist(), border="reflect_pixel")
    expected = scipy.ndimage.correlate(np.nan_to_num(values), kernel[None, None], mode="mirror")
    np.testing.assert_allclose(result.values, expected, rtol=1e-12)


def test_apply_kernel_replaces_invalid_values_and_scales_by_factor():
    cube = minimal_cube().copy(data=np.where(np.isnan(MINIMAL), np.inf, MINIMAL))
    result = run("apply_kernel", data=cube, kernel=[[0, 0, 0], [0, 1, 0], [0, 0, 0]], replace_invalid=-7, factor=2)
    assert result.values[1, 2, 2] == -14
    assert np.isfinite(result.values).all()


def test_apply_kernel_counts_booleans_as_zero_and_one():
    cube = minimal_cube().copy(data=np.array(MINIMAL) > 0)
    result = run("apply_kernel", data=cube, kernel=[[1, 1, 1], [1, 1, 1], [1, 1, 1]])
    expected = scipy.ndimage.correlate((np.array(MINIMAL) > 0).astype(float), np.ones((1, 3, 3)), mode="constant")
    np.testing.assert_array_equal(result.values, expected)


def test_apply_kernel_refuses_an_even_kernel():
    with pytest.raises(OpenEOError) as err:
        run("apply_kernel", data=minimal_cube(), kernel=[[1, 2], [2, 4]])
    assert err.value.code == "KernelDimensionsUneven"


def test_apply_kernel_keeps_dimensions_crs_and_laziness():
    cube, _ = random_cube()
    result = apply_kernel(cube, GAUSS)
    assert isinstance(result.data, da.Array)
    assert result.dims == cube.dims
    assert [dimension_type(result, d) for d in result.dims] == ["temporal", "bands", "spatial", "spatial"]
    assert result.rio.crs.to_epsg() == 32633
    np.testing.assert_array_equal(result["x"].values, cube["x"].values)


def test_apply_kernel_puts_the_first_kernel_row_north_also_in_south_up_cubes():
    cube, values = random_cube(chunks=-1)
    south_up = cube.isel(y=slice(None, None, -1))
    kernel = [[1, 0, 0], [0, 0, 0], [0, 0, 0]]  # the value north-west of each pixel
    north = apply_kernel(cube, kernel).values
    south = apply_kernel(south_up, kernel).isel(y=slice(None, None, -1)).values
    np.testing.assert_array_equal(north, south)


# --- apply_neighborhood -----------------------------------------------------------------------------------


def test_apply_neighborhood_with_a_kernel_and_enough_overlap_equals_the_kernel_on_the_whole_cube():
    cube, _ = random_cube()
    process = child({"k": {"process_id": "apply_kernel", "result": True,
                           "arguments": {"data": {"from_parameter": "data"}, "kernel": GAUSS}}})
    result = run("apply_neighborhood", data=cube, process=process,
                 size=[pixels("x", 7), pixels("y", 6)], overlap=[pixels("x", 1), pixels("y", 1)])
    # the missing overlap at the edges is no-data, which apply_kernel replaces by 0, like its border 0
    np.testing.assert_allclose(result.values, apply_kernel(cube, GAUSS).values, atol=1e-12)
    assert isinstance(result.data, da.Array)
    assert result.rio.crs.to_epsg() == 32633
    assert [dimension_type(result, d) for d in result.dims] == ["temporal", "bands", "spatial", "spatial"]


def test_apply_neighborhood_runs_the_process_over_each_window_and_drops_the_overlap():
    cube, values = random_cube()
    window_mean = {
        "mx": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_parameter": "data"}, "dimension": "x",
            "reducer": child({"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}},
                                    "result": True}})}},
        "my": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "mx"}, "dimension": "y",
            "reducer": child({"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}},
                                    "result": True}})}},
        "d": {"process_id": "subtract", "arguments": {"x": {"from_parameter": "data"}, "y": {"from_node": "my"}},
              "result": True},
    }
    result = run("apply_neighborhood", data=cube, process=child(window_mean),
                 size=[pixels("x", 10), pixels("y", 8)], overlap=[pixels("x", 2), pixels("y", 3)])

    padded = np.pad(values, ((0, 0), (0, 0), (3, 3), (2, 2)), constant_values=np.nan)
    expected = np.empty_like(values)
    for y0 in range(0, 23, 8):
        for x0 in range(0, 31, 10):
            window = padded[:, :, y0:y0 + 8 + 6, x0:x0 + 10 + 4]
            with warnings.catch_warnings():  # rows of only padding have no mean
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(np.nanmean(window, axis=3), axis=2)[:, :, None, None]
            core = values[:, :, y0:y0 + 8, x0:x0 + 10]
            expected[:, :, y0:y0 + 8, x0:x0 + 10] = core - mean
    np.testing.assert_allclose(result.values, expected, rtol=1e-12)


def test_apply_neighborhood_gives_the_process_cubes_with_the_cube_dimensions_and_extended_labels():
    cube, _ = random_cube()
    seen = []

    def process(data, context=None):
        seen.append(data)
        return data * context

    result = apply_neighborhood(cube, process, size=[pixels("x", 16), pixels("y", 16)],
                                overlap=[pixels("x", 4), pixels("y", 4)], context=3)
    assert len(seen) == 4  # 2 × 2 windows over 23 × 31 pixels
    first = seen[0]
    assert first.dims == cube.dims and first.shape == (2, 3, 24, 24)
    assert isinstance(first.data, da.Array) and first.data.npartitions == 1
    assert [dimension_type(first, d) for d in first.dims] == ["temporal", "bands", "spatial", "spatial"]
    assert first.rio.crs.to_epsg() == 32633
    np.testing.assert_allclose(first["x"].values, 400_005 + 10.0 * np.arange(-4, 20))
    np.testing.assert_allclose(first["y"].values, 5_000_000 - 5 - 10.0 * np.arange(-4, 20))
    assert np.isnan(first.values[:, :, :4, :]).all()  # the overlap beyond the edge is no-data
    last = seen[-1]
    assert last.shape == (2, 3, 7 + 8, 15 + 8)  # the partial last window, with its overlap
    np.testing.assert_allclose(result.values, cube.values * 3)


def test_apply_neighborhood_converts_metres_to_pixels():
    cube, _ = random_cube()
    shapes = []

    def process(data, context=None):
        shapes.append(data.shape)
        return data

    apply_neighborhood(cube, process, size=[pixels("x", 100, "m"), pixels("y", 80, None)],
                       overlap=[pixels("x", 20, "m")])
    assert shapes[0] == (2, 3, 8, 14)


def test_apply_neighborhood_passes_labeled_arrays_when_neighborhoods_are_one_dimensional():
    cube, values = random_cube()
    calls = []

    def process(data, context=None):
        calls.append(data)
        return data.cumsum(ARRAY_DIM, skipna=False)

    result = apply_neighborhood(cube, process, size=[pixels("x", 1), pixels("y", 1), pixels("bands", 1),
                                                     pixels("t", None)])
    assert len(calls) == 1  # all pixels at once, vectorised
    assert ARRAY_DIM in calls[0].dims and "t" not in calls[0].dims
    np.testing.assert_allclose(result.values, np.cumsum(values, axis=0))
    assert result.dims == cube.dims
    assert dimension_type(result, "t") == "temporal"


def test_apply_neighborhood_windows_along_time_by_duration():
    values = np.arange(10, dtype=float).reshape(10, 1, 1) * np.ones((10, 2, 2))
    cube = new_cube(values, {"t": ("temporal", pd.date_range("2023-01-25", periods=10, freq="3D")),
                             "y": ("spatial", [1.5, 0.5]), "x": ("spatial", [0.5, 1.5])})
    seen = []

    def process(data, context=None):
        seen.append(pd.DatetimeIndex(data["t"].values))
        return data - data.mean("t")

    result = apply_neighborhood(cube, process, size=[pixels("t", "P10D", None), pixels("x", 2), pixels("y", 2)])
    assert [len(s) for s in seen] == [4, 3, 3]
    assert seen[1][0] == pd.Timestamp("2023-02-06")
    np.testing.assert_allclose(result.values[:4, 0, 0], [-1.5, -0.5, 0.5, 1.5])


def test_apply_neighborhood_with_the_spec_example_sizes_in_pixels_and_durations():
    cube, values = random_cube(shape=(6, 2, 40, 40), chunks=(1, 2, 20, 20))
    windows = []

    def process(data, context=None):
        windows.append((data.sizes["t"], data.sizes["y"], data.sizes["x"]))
        return data + 1

    result = apply_neighborhood(
        cube, process,
        size=[pixels("x", 16), pixels("y", 16), {"dimension": "t", "value": "P5D"}],
        overlap=[pixels("x", 4), pixels("y", 4), {"dimension": "t", "value": "P3D"}],
    )
    # labels every 5 days: one per 5-day window, plus the next one, 5 days later, within the 3 days after it
    assert len(windows) == 6 * 3 * 3
    assert sorted({w[0] for w in windows[:9]}) == [2] and sorted({w[0] for w in windows[-9:]}) == [1]
    assert {w[1:] for w in windows} == {(24, 24), (16, 24), (24, 16), (16, 16)}  # 4 + 16 + 4 and 4 + 8 + 4
    np.testing.assert_allclose(result.values, values + 1)


def test_apply_neighborhood_refuses_a_process_that_changes_the_dimensions():
    cube, _ = random_cube()
    with pytest.raises(OpenEOError) as err:
        apply_neighborhood(cube, lambda data, context=None: data.mean("x"),
                           size=[pixels("x", 16), pixels("y", 16)])
    assert err.value.code == "DataCubePropertiesImmutable"


def test_apply_neighborhood_refuses_an_unknown_dimension():
    cube, _ = random_cube()
    with pytest.raises(DimensionNotAvailable):
        apply_neighborhood(cube, lambda data, context=None: data, size=[pixels("z", 16)])


def test_apply_neighborhood_keeps_integer_cubes_without_overlap():
    cube = minimal_cube().fillna(0).astype("int64")
    result = apply_neighborhood(cube, lambda data, context=None: data + 1, size=[pixels("x", 2), pixels("y", 2)])
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result.values, cube.values + 1)
