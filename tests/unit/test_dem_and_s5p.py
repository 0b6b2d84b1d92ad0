"""Collections without a time dimension (DEMs) and the demo's DEMs and Sentinel-5P-like grids.

Loads run on real COGs: the shared ``DEM`` catalog (``../shared/data/dem``, items with ``datetime: null``)
and the generated demo catalog.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.windows

from backend.catalog import openeo_collection
from backend.demo.sentinel5p import S5P_BANDS
from processes.core.env import ProcessEnv
from processes.data.collection_metadata import has_time_dimension
from processes.data.load import load_collection
from processes.data.stac_sources import CollectionCatalog, open_static
from processes.data.stack_blocks import block_chunks
from processes.model.raster_cube import dimension_type
from tests.conftest import shared_path
from tests.processes import run_node

OETZTAL_BOX = {"west": 10.70, "south": 46.75, "east": 10.82, "north": 46.84}
SEAM_BOX = {"west": 10.34, "south": 45.47, "east": 10.36, "north": 45.49}  # across the SRTM-like tiles' seam
SCENE_BOX = {"west": 601000, "south": 5036000, "east": 603000, "north": 5038000, "crs": 32632}


@pytest.fixture(scope="module")
def shared_dem() -> ProcessEnv:
    catalog = shared_path("dem/catalog.json")
    return ProcessEnv(collections=CollectionCatalog(open_static(catalog)))


@pytest.fixture(scope="module")
def demo(demo_data) -> ProcessEnv:
    return ProcessEnv(collections=CollectionCatalog(open_static(demo_data / "demo" / "catalog.json")))


@pytest.fixture(scope="module")
def demo_catalog(demo_data) -> pystac.Catalog:
    return pystac.Catalog.from_file(str(demo_data / "demo" / "catalog.json"))


def _item(item_id: str, when: datetime | None) -> dict:
    props = {"datetime": when.isoformat()} if when else {
        "datetime": None, "start_datetime": "2000-02-11T00:00:00Z", "end_datetime": "2000-02-22T00:00:00Z"}
    return {"type": "Feature", "id": item_id, "geometry": None, "bbox": [0, 0, 1, 1], "properties": props,
            "assets": {}}


# --- the rule -----------------------------------------------------------------------------------------------


def test_items_without_datetime_make_a_collection_without_time_dimension():
    assert not has_time_dimension({}, [_item("a", None), _item("b", None)])


def test_one_item_with_a_datetime_keeps_the_time_dimension():
    assert has_time_dimension({}, [_item("a", None), _item("b", datetime(2020, 1, 1, tzinfo=UTC))])


def test_declared_cube_dimensions_decide():
    spatial = {"x": {"type": "spatial"}, "y": {"type": "spatial"}}
    assert not has_time_dimension({"cube:dimensions": spatial}, [_item("a", datetime(2020, 1, 1, tzinfo=UTC))])
    assert has_time_dimension({"cube:dimensions": {**spatial, "t": {"type": "temporal"}}}, [_item("a", None)])


def test_timeless_items_are_read_in_one_block():
    items = [_item(str(i), None) for i in range(3)]
    assert block_chunks(items, 1, (512, 512), temporal=False) == ((3,), 1, 512, 512)


# --- the shared real DEM ----------------------------------------------------------------------------------


def test_shared_dem_loads_without_time_dimension(shared_dem):
    cube = load_collection("DEM", OETZTAL_BOX, None, env=shared_dem)
    assert cube.dims == ("bands", "y", "x")
    assert [dimension_type(cube, d) for d in cube.dims] == ["bands", "spatial", "spatial"]
    assert cube.rio.crs.to_epsg() == 4326


def test_shared_dem_values_and_grid_are_the_cogs(shared_dem):
    cube = load_collection("DEM", OETZTAL_BOX, None, env=shared_dem)
    with rasterio.open(shared_path("dem/srtm_oetztal.tif")) as src:
        col = (float(cube.x[0]) - src.transform.c) / src.transform.a - 0.5
        row = (float(cube.y[0]) - src.transform.f) / src.transform.e - 0.5
        assert col == pytest.approx(round(col), abs=1e-6) and row == pytest.approx(round(row), abs=1e-6)
        window = rasterio.windows.Window(round(col), round(row), cube.sizes["x"], cube.sizes["y"])
        expected = src.read(1, window=window).astype("float32")
    np.testing.assert_array_equal(cube.isel(bands=0).values, expected)


def test_shared_dem_collection_metadata_has_no_time_dimension(shared_dem):
    doc = openeo_collection(shared_dem.collections.get("DEM"), "http://test")
    dims = doc["cube:dimensions"]
    assert set(dims) == {"x", "y", "bands"}
    assert dims["bands"]["values"] == ["DEM"]
    assert "step" not in dims["x"]  # the items' grids differ (3" and 0.002°)
    assert [b["name"] for b in doc["summaries"]["eo:bands"]] == ["DEM"]


def test_temporal_filter_still_selects_items_by_their_period(shared_dem):
    box = {"west": 5.2, "south": 45.1, "east": 5.3, "north": 45.2}  # Copernicus DEM, 2011-2015
    assert load_collection("DEM", box, ["2011-01-01", "2016-01-01"], env=shared_dem).dims == ("bands", "y", "x")
    with pytest.raises(Exception, match="No data"):
        load_collection("DEM", box, ["2000-01-01", "2001-01-01"], env=shared_dem)


# --- the demo DEMs ------------------------------------------------------------------------------------------


def test_demo_dem_items_have_a_period_but_no_datetime(demo_catalog):
    for collection_id in ("DEMO_DEM_SRTM30", "DEMO_DEM_EUDEM25"):
        collection = demo_catalog.get_child(collection_id)
        assert "t" not in collection.extra_fields["cube:dimensions"]
        for item in collection.get_items():
            assert item.datetime is None
            assert item.properties["start_datetime"] < item.properties["end_datetime"]


def test_srtm_like_tiles_are_mosaicked_across_their_seam(demo):
    cube = load_collection("DEMO_DEM_SRTM30", SEAM_BOX, None, env=demo)
    assert cube.rio.resolution()[0] == pytest.approx(1 / 3600)
    values = cube.isel(bands=0).values
    assert np.isnan(values).all(axis=0).sum() == 0  # no empty column at 10.35 E
    assert 30 < np.nanmedian(values) < 150


def test_the_two_demo_dems_differ_realistically(demo):
    srtm = load_collection("DEMO_DEM_SRTM30", SCENE_BOX, None, env=demo)
    eudem = load_collection("DEMO_DEM_EUDEM25", SCENE_BOX, None, env=demo)
    assert eudem.rio.crs.to_epsg() == 3035 and eudem.rio.resolution()[0] == 25
    assert not np.isnan(eudem.values).any()  # void-filled
    voids = np.isnan(srtm.values).mean()
    assert 0 < voids < 0.05
    on_srtm = run_node("resample_cube_spatial", data=eudem, target=srtm, method="bilinear")
    difference = (srtm - on_srtm).values
    assert -3.0 < np.nanmedian(difference) < 0.0  # EU-DEM-like is 1.5 m higher
    assert 1.0 < np.nanstd(difference) < 6.0


# --- the demo Sentinel-5P-like grids ------------------------------------------------------------------------


def test_s5p_has_a_daily_item_for_a_whole_month(demo_catalog):
    items = list(demo_catalog.get_child("DEMO_SENTINEL5P_L3").get_items())
    days = sorted(item.datetime.date().isoformat() for item in items)
    assert len(days) == 31 and days[0] == "2023-01-01" and days[-1] == "2023-01-31"
    assert set(items[0].assets) == {band.name for band in S5P_BANDS}


def test_s5p_gaps_are_widest_for_methane(demo):
    cube = load_collection("DEMO_SENTINEL5P_L3", None, ["2023-01-01", "2023-02-01"], env=demo)
    valid = {str(b): float((~np.isnan(cube.sel(bands=b).values)).mean()) for b in cube.bands.values}
    assert valid["CH4"] < valid["NO2"] < valid["CO"] < valid["QA"] < 1.0


def test_no2_is_highest_over_milan_and_low_over_the_alps(demo):
    cube = load_collection("DEMO_SENTINEL5P_L3", None, ["2023-01-01", "2023-02-01"], ["NO2"], env=demo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = cube.isel(bands=0).mean("t", skipna=True)
    milan = float(mean.sel(x=9.19, y=45.46, method="nearest"))
    alps = float(mean.sel(x=9.5, y=46.7, method="nearest"))
    assert milan > 8e-5 and alps < 2e-5


def test_monthly_period_mean_is_the_nan_aware_mean_of_the_days(demo):
    cube = load_collection("DEMO_SENTINEL5P_L3", {"west": 9, "south": 45, "east": 10, "north": 46},
                           ["2023-01-01", "2023-02-01"], ["NO2", "CO"], env=demo)
    reducer = {"process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}},
                                       "result": True}}}
    monthly = run_node("aggregate_temporal_period", data=cube, period="month", reducer=reducer)
    assert list(monthly.t.values) == ["2023-01"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(cube.values, axis=0)
    np.testing.assert_allclose(monthly.isel(t=0).values, expected, rtol=1e-6)
