"""Parcel profiles through the real ``openeo`` client: cloud-masked NDVI per parcel and date.

The parcels are uploaded to the user's workspace and read with ``load_uploaded_files``; the
profiles come back as CSV and GeoParquet and are compared with a label-raster computation done
directly on the demo COGs with rasterio and numpy (pixel centres inside the parcel, SCL classes
3, 8, 9, 10 masked, the 20 m SCL taken by nearest neighbour on the 10 m grid).
"""

from __future__ import annotations

import io
from collections import defaultdict

import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import rasterio
from rasterio.enums import Resampling
from rasterio.features import rasterize

COLLECTION = "DEMO_SENTINEL2_L2A"
DATES = ["2023-05-01", "2023-08-01"]
CLOUDY = [3, 8, 9, 10]  # SCL: cloud shadow, cloud medium/high probability, thin cirrus


def direct_profiles(catalog_path, parcels: gpd.GeoDataFrame) -> pd.DataFrame:
    catalog = pystac.Catalog.from_file(str(catalog_path))
    items = [i for i in catalog.get_child(COLLECTION).get_items()
             if DATES[0] <= i.datetime.strftime("%Y-%m-%d") < DATES[1]]
    utm = parcels.to_crs(32632)
    shapes = [(g, i + 1) for i, g in enumerate(utm.geometry)]
    n = len(utm) + 1
    sums, counts = defaultdict(lambda: np.zeros(n)), defaultdict(lambda: np.zeros(n))
    for item in items:
        with rasterio.open(item.assets["B04"].get_absolute_href()) as src:
            red, shape, transform = src.read(1).astype("float64"), src.shape, src.transform
            nodata = src.nodata
        with rasterio.open(item.assets["B08"].get_absolute_href()) as src:
            nir = src.read(1).astype("float64")
        with rasterio.open(item.assets["SCL"].get_absolute_href()) as src:
            scl = src.read(1, out_shape=shape, resampling=Resampling.nearest)
        labels = rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32")
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = (nir - red) / (nir + red)
        valid = (labels > 0) & np.isfinite(ndvi) & ~np.isin(scl, CLOUDY) & (red != nodata) & (nir != nodata)
        day = item.datetime.strftime("%Y-%m-%d")
        sums[day] += np.bincount(labels[valid], weights=ndvi[valid], minlength=n)
        counts[day] += np.bincount(labels[valid], minlength=n)
    rows = []
    for day in sorted(sums):
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts[day] > 0, sums[day] / counts[day], np.nan)[1:]
        rows.append(pd.DataFrame({"parcel_id": utm["parcel_id"].to_numpy(), "day": day, "expected": means}))
    return pd.concat(rows)


def masked_ndvi_profiles(connection, parcels_path: str):
    cube = connection.load_collection(COLLECTION, temporal_extent=DATES, bands=["B04", "B08", "SCL"])
    scl = cube.band("SCL")
    cloudy = (scl == CLOUDY[0]) | (scl == CLOUDY[1]) | (scl == CLOUDY[2]) | (scl == CLOUDY[3])
    ndvi = cube.filter_bands(["B04", "B08"]).ndvi().mask(cloudy)
    parcels = connection.datacube_from_process("load_uploaded_files", paths=[parcels_path], format="GeoJSON")
    return ndvi.aggregate_spatial(geometries=parcels, reducer="mean")


def compare(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    value = [c for c in got.columns if c not in ("id", "parcel_id", "crop", "area_m2", "date", "geometry")][-1]
    got = got.assign(day=got["date"].str[:10])[["parcel_id", "day", value]]
    joined = expected.merge(got, on=["parcel_id", "day"], how="left")
    assert len(got) == len(expected)
    np.testing.assert_allclose(joined[value], joined["expected"], rtol=1e-5, atol=1e-6, equal_nan=True)
    assert joined["expected"].notna().sum() > len(expected) // 3  # many parcel-dates have clear pixels


def test_cloud_masked_ndvi_profiles_from_workspace_parcels(connection, live_server, tmp_path):
    parcels_file = live_server.data_dir / "demo" / "parcels.geojson"
    connection.upload_file(parcels_file, target="fields/parcels.geojson")
    parcels = gpd.read_file(parcels_file)
    expected = direct_profiles(live_server.data_dir / "demo" / "catalog.json", parcels)

    profiles = masked_ndvi_profiles(connection, "fields/parcels.geojson")
    csv_bytes = profiles.save_result(format="CSV").download()
    got = pd.read_csv(io.BytesIO(csv_bytes))
    assert set(parcels.columns) - {"geometry"} <= set(got.columns)  # the parcels' own properties
    assert "ndvi" in got.columns
    compare(got, expected)

    target = tmp_path / "profiles.parquet"
    profiles.download(target, format="Parquet")
    frame = gpd.read_parquet(target)
    assert frame.crs.to_epsg() == 4326 and len(frame) == len(expected)
    compare(pd.DataFrame(frame.drop(columns="geometry")), expected)


def test_unknown_workspace_file_is_file_not_found(connection):
    import openeo

    cube = connection.datacube_from_process("load_uploaded_files", paths=["nope/missing.geojson"], format="GeoJSON")
    try:
        cube.download(format="JSON")
    except openeo.rest.OpenEoApiError as err:
        assert err.http_status_code == 404 and err.code == "FileNotFound"
    else:
        raise AssertionError("a missing workspace file must fail")


SMOOTH = """
import pandas as pd

def apply_timeseries(series: pd.Series, context: dict) -> pd.Series:
    return series.interpolate(limit_direction="both").rolling(3, center=True, min_periods=1).mean()
"""


def test_a_timeseries_udf_smooths_the_profiles(connection, live_server):
    connection.upload_file(live_server.data_dir / "demo" / "parcels.geojson", target="fields/parcels.geojson")
    profiles = masked_ndvi_profiles(connection, "fields/parcels.geojson")
    raw = pd.read_csv(io.BytesIO(profiles.save_result(format="CSV").download()))
    smoothed = pd.read_csv(io.BytesIO(profiles.run_udf(udf=SMOOTH, runtime="Python")
                                      .save_result(format="CSV").download()))
    expected = (raw.sort_values(["parcel_id", "date"]).groupby("parcel_id")["ndvi"]
                .transform(lambda s: s.interpolate(limit_direction="both").rolling(3, center=True, min_periods=1)
                           .mean()))
    got = smoothed.sort_values(["parcel_id", "date"])["ndvi"]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-6, equal_nan=True)


def direct_weighted_ndvi(catalog_path, parcels: gpd.GeoDataFrame) -> pd.DataFrame:
    """Mean NDVI per parcel and date, every pixel weighted by the area of it the parcel covers (shapely)."""
    import shapely

    catalog = pystac.Catalog.from_file(str(catalog_path))
    items = [i for i in catalog.get_child(COLLECTION).get_items()
             if DATES[0] <= i.datetime.strftime("%Y-%m-%d") < "2023-06-01"]
    utm = parcels.to_crs(32632)
    sums, weights = defaultdict(lambda: np.zeros(len(utm))), defaultdict(lambda: np.zeros(len(utm)))
    for item in items:
        with rasterio.open(item.assets["B04"].get_absolute_href()) as src:
            red, transform, nodata = src.read(1).astype("float64"), src.transform, src.nodata
        with rasterio.open(item.assets["B08"].get_absolute_href()) as src:
            nir = src.read(1).astype("float64")
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = np.where((red == nodata) | (nir == nodata), np.nan, (nir - red) / (nir + red))
        day = item.datetime.strftime("%Y-%m-%d")
        for k, parcel in enumerate(utm.geometry):
            col0, row1 = ~transform @ (parcel.bounds[0], parcel.bounds[1])
            col1, row0 = ~transform @ (parcel.bounds[2], parcel.bounds[3])
            (r0, r1), (c0, c1) = (np.clip([int(np.floor(low)), int(high) + 1], 0, size)
                                  for low, high, size in ((row0, row1, ndvi.shape[0]), (col0, col1, ndvi.shape[1])))
            if r1 <= r0 or c1 <= c0:  # the parcel lies in the other tile
                continue
            rows, cols = np.mgrid[r0:r1, c0:c1]
            x0, y0 = transform @ (cols.ravel(), rows.ravel())
            x1, y1 = transform @ (cols.ravel() + 1, rows.ravel() + 1)
            cells = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
            w = shapely.area(shapely.intersection(cells, parcel)) / abs(transform.a * transform.e)
            v = ndvi[rows.ravel(), cols.ravel()]
            ok = np.isfinite(v) & (w > 0)
            sums[day][k] += (w[ok] * v[ok]).sum()
            weights[day][k] += w[ok].sum()
    rows = [pd.DataFrame({"parcel_id": utm["parcel_id"].to_numpy(), "day": day,
                          "expected": np.where(weights[day] > 0, sums[day] / np.maximum(weights[day], 1e-300), np.nan)})
            for day in sorted(sums)]
    return pd.concat(rows)


def test_coverage_weighted_profiles_through_the_client(connection, live_server):
    parcels = gpd.read_file(live_server.data_dir / "demo" / "parcels.geojson").iloc[::20]
    expected = direct_weighted_ndvi(live_server.data_dir / "demo" / "catalog.json", parcels)
    cube = connection.load_collection(COLLECTION, temporal_extent=[DATES[0], "2023-06-01"], bands=["B04", "B08"])
    profiles = cube.ndvi().aggregate_spatial(geometries=parcels.__geo_interface__, reducer="mean")
    weighted = pd.read_csv(io.BytesIO(profiles.save_result(format="CSV").download(
        additional={"aggregate_spatial_pixels": "coverage"})))
    compare(weighted, expected)
    centre = pd.read_csv(io.BytesIO(profiles.save_result(format="CSV").download()))
    assert not np.allclose(centre["ndvi"], weighted["ndvi"], equal_nan=True)  # the weights change the means
