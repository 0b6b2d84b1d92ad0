"""The demo data generator: layout, STAC metadata, COGs, scene content, determinism, reuse of output."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.features
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from backend.demo import DEMO_S2_COLLECTION, DEMO_SIZES, DemoSize, DemoSummary, generate_demo
from backend.demo.landscape import Landscape, build_landscape
from backend.demo.sizes import every_n_days

SMALL = DEMO_SIZES["small"]
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"]
BANDS_10M = ["B02", "B03", "B04", "B08"]
REFLECTANCE_BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
CLOUD_CLASSES = [8, 9, 10]
# A few tiles, dates and parcels: enough to exercise the re-generation rules in a fraction of a second.
TINY = DemoSize(name="tiny", tile_px=128, n_tiles=2, dates=every_n_days(SMALL.dates[0], 2, 15), n_parcels=2, seed=7)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    out_dir = tmp_path_factory.mktemp("demo")
    return out_dir, generate_demo(out_dir, "small")


@pytest.fixture(scope="module")
def out_dir(demo: tuple[Path, DemoSummary]) -> Path:
    return demo[0]


@pytest.fixture(scope="module")
def catalog(out_dir: Path) -> pystac.Catalog:
    return pystac.Catalog.from_file(str(out_dir / "catalog.json"))


@pytest.fixture(scope="module")
def collection(catalog: pystac.Catalog) -> pystac.Collection:
    child = catalog.get_child(DEMO_S2_COLLECTION)
    assert isinstance(child, pystac.Collection)
    return child


@pytest.fixture(scope="module")
def items(collection: pystac.Collection) -> dict[str, pystac.Item]:
    return {item.id: item for item in collection.get_items()}


@pytest.fixture(scope="module")
def item_documents(out_dir: Path) -> dict[str, dict]:
    """Item JSON as written (pystac migrates some fields on reading, e.g. ``proj:epsg`` to ``proj:code``)."""
    paths = (out_dir / DEMO_S2_COLLECTION).glob("*/*.json")
    return {path.stem: json.loads(path.read_text()) for path in paths}


@pytest.fixture(scope="module")
def landscape() -> Landscape:
    """The ground truth the small demo was painted from (rebuilt: generation is deterministic)."""
    return build_landscape(SMALL)


def read_asset(item: pystac.Item, band: str) -> np.ndarray:
    with rasterio.open(item.assets[band].get_absolute_href()) as src:
        return src.read(1)


def ndvi(item: pystac.Item) -> np.ndarray:
    red = read_asset(item, "B04").astype(np.float64)
    nir = read_asset(item, "B08").astype(np.float64)
    return (nir - red) / (nir + red)


def day_of_year(item: pystac.Item) -> int:
    assert item.datetime is not None
    return item.datetime.timetuple().tm_yday


# --- layout and summary ---------------------------------------------------------------------------------------


def test_summary_reports_what_was_written(demo: tuple[Path, DemoSummary]):
    out_dir, summary = demo
    assert summary.catalog_path == out_dir / "catalog.json"
    assert summary.collection_ids == (DEMO_S2_COLLECTION, "DEMO_DEM_SRTM30", "DEMO_DEM_EUDEM25", "DEMO_SENTINEL5P_L3")
    # 48 Sentinel-2 items, 2 + 1 DEM tiles, 31 Sentinel-5P days
    assert (summary.n_items, summary.n_parcels, summary.size, summary.reused) == (82, 200, "small", False)
    assert summary.parcels_path == out_dir / "parcels.geojson"


def test_small_generation_is_fast(demo: tuple[Path, DemoSummary]):
    assert demo[1].seconds < 60


def test_files_are_laid_out_per_collection_and_item(out_dir: Path):
    item_dir = out_dir / DEMO_S2_COLLECTION / "S2_DEMO_T1_20230105"
    assert (out_dir / DEMO_S2_COLLECTION / "collection.json").is_file()
    assert (item_dir / "S2_DEMO_T1_20230105.json").is_file()
    assert sorted(p.name for p in item_dir.glob("*.tif")) == sorted(f"S2_DEMO_T1_20230105_{b}.tif" for b in BANDS)


def test_catalog_is_self_contained(out_dir: Path):
    for path in out_dir.rglob("*.json"):
        document = json.loads(path.read_text())
        hrefs = [link["href"] for link in document["links"] if link["rel"] != "license"]
        hrefs += [asset["href"] for asset in document.get("assets", {}).values()]
        assert all(href.startswith(("./", "../")) for href in hrefs), path
        assert not any(link["rel"] == "self" for link in document["links"]), path


def test_catalog_records_the_demo_size(catalog: pystac.Catalog):
    assert catalog.extra_fields["terracube:demo_size"] == "small"
    assert [child.id for child in catalog.get_children()] == [
        DEMO_S2_COLLECTION, "DEMO_DEM_SRTM30", "DEMO_DEM_EUDEM25", "DEMO_SENTINEL5P_L3"]


def test_one_item_per_tile_and_date(items: dict[str, pystac.Item]):
    expected = {f"S2_DEMO_{tile}_{day:%Y%m%d}" for tile in ("T1", "T2") for day in SMALL.dates}
    assert len(items) == 2 * 24
    assert set(items) == expected


# --- STAC metadata --------------------------------------------------------------------------------------------


def test_items_carry_sentinel2_properties(item_documents: dict[str, dict]):
    for document in item_documents.values():
        props = document["properties"]
        assert props["constellation"] == "sentinel-2"
        assert props["instruments"] == ["msi"]
        assert props["proj:epsg"] == 32632
        assert 0.0 <= props["eo:cloud_cover"] <= 100.0
        assert props["datetime"].endswith("T10:30:00Z")
    platforms = [item_documents[f"S2_DEMO_T1_{day:%Y%m%d}"]["properties"]["platform"] for day in SMALL.dates[:4]]
    assert platforms == ["sentinel-2a", "sentinel-2b", "sentinel-2a", "sentinel-2b"]


def test_items_declare_their_extensions(item_documents: dict[str, dict]):
    item = item_documents["S2_DEMO_T1_20230105"]
    assert item["stac_version"] == "1.1.0"
    for extension in ("eo/v1.1.0", "raster/v1.1.0", "projection/v1.1.0"):
        assert any(extension in url for url in item["stac_extensions"]), extension


def test_assets_carry_band_metadata(items: dict[str, pystac.Item]):
    item = items["S2_DEMO_T2_20230719"]
    assert list(item.assets) == BANDS
    common_names = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16", "B12": "swir22"}
    for band, asset in item.assets.items():
        fields = asset.extra_fields
        assert asset.media_type == "image/tiff; application=geotiff; profile=cloud-optimized"
        assert asset.roles == ["data"]
        raster = fields["raster:bands"][0]
        assert raster["nodata"] == 0
        assert raster["spatial_resolution"] == (10 if band in BANDS_10M else 20)
        if band == "SCL":
            assert raster["data_type"] == "uint8"
            assert {c["value"] for c in raster["classification:classes"]} >= {3, 4, 5, 6, 8, 9, 10}
        else:
            assert raster["data_type"] == "uint16"
            assert (raster["scale"], raster["offset"]) == (0.0001, 0)
            eo_band = fields["eo:bands"][0]
            assert (eo_band["name"], eo_band["common_name"]) == (band, common_names[band])
            assert eo_band["center_wavelength"] > 0


def test_assets_carry_their_own_grid(items: dict[str, pystac.Item]):
    item = items["S2_DEMO_T1_20230105"]
    b04, b11 = item.assets["B04"].extra_fields, item.assets["B11"].extra_fields
    assert b04["proj:shape"] == [512, 512]
    assert b04["proj:transform"] == [10.0, 0.0, 600_000.0, 0.0, -10.0, 5_040_000.0]
    assert b04["proj:bbox"] == [600_000.0, 5_034_880.0, 605_120.0, 5_040_000.0]
    assert b11["proj:shape"] == [256, 256]
    assert b11["proj:transform"] == [20.0, 0.0, 600_000.0, 0.0, -20.0, 5_040_000.0]
    assert b11["proj:bbox"] == b04["proj:bbox"]


def test_tiles_are_adjacent_in_the_same_zone(items: dict[str, pystac.Item]):
    t1 = items["S2_DEMO_T1_20230105"].assets["B04"].extra_fields["proj:bbox"]
    t2 = items["S2_DEMO_T2_20230105"].assets["B04"].extra_fields["proj:bbox"]
    assert t2[0] == t1[2]
    assert (t2[1], t2[3]) == (t1[1], t1[3])


def test_item_footprint_is_inside_its_bbox(items: dict[str, pystac.Item]):
    for item in items.values():
        west, south, east, north = item.bbox
        assert shapely.box(west, south, east, north).covers(shape(item.geometry))
        assert 10.0 < west < east < 10.6 and 45.3 < south < north < 45.7  # the Po plain near Brescia


def test_collection_describes_the_datacube(collection: pystac.Collection):
    dims = collection.extra_fields["cube:dimensions"]
    assert dims["x"] == {"type": "spatial", "axis": "x", "extent": [600_000.0, 610_240.0], "step": 10.0,
                         "reference_system": 32632}
    assert dims["y"] == {"type": "spatial", "axis": "y", "extent": [5_034_880.0, 5_040_000.0], "step": 10.0,
                         "reference_system": 32632}
    assert dims["t"] == {"type": "temporal", "extent": ["2023-01-05T10:30:00Z", "2023-12-16T10:30:00Z"],
                         "step": None}
    assert dims["bands"] == {"type": "bands", "values": BANDS}
    assert any("datacube/v2.2.0" in url for url in collection.stac_extensions)


def test_collection_has_extent_summaries_and_item_assets(collection: pystac.Collection, items):
    assert collection.license in {"CC-BY-4.0", "proprietary"}
    assert "synthetic" in collection.description.lower()
    assert collection.extent.temporal.intervals == [[datetime(2023, 1, 5, 10, 30, tzinfo=UTC),
                                                     datetime(2023, 12, 16, 10, 30, tzinfo=UTC)]]
    west, south, east, north = collection.extent.spatial.bboxes[0]
    for item in items.values():
        assert west <= item.bbox[0] and south <= item.bbox[1] and item.bbox[2] <= east and item.bbox[3] <= north
    summaries = collection.summaries.to_dict()
    assert summaries["gsd"] == [10, 20]
    assert summaries["proj:epsg"] == [32632]
    assert summaries["platform"] == ["sentinel-2a", "sentinel-2b"]
    assert [b["name"] for b in summaries["eo:bands"]] == BANDS
    assert set(collection.extra_fields["item_assets"]) == set(BANDS)


# --- COGs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("band", BANDS)
def test_assets_are_cloud_optimized_geotiffs(items: dict[str, pystac.Item], band: str):
    asset = items["S2_DEMO_T2_20230604"].assets[band]
    with rasterio.open(asset.get_absolute_href()) as src:
        assert src.driver == "GTiff"
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.compression.name.lower() == "deflate"
        assert src.block_shapes == [(256, 256)]
        assert src.overviews(1)
        assert src.dtypes[0] == ("uint8" if band == "SCL" else "uint16")
        assert src.nodata == 0
        assert src.crs.to_epsg() == 32632
        assert src.descriptions == (band,)
        assert list(src.shape) == asset.extra_fields["proj:shape"]
        assert list(src.transform)[:6] == asset.extra_fields["proj:transform"]


def test_20m_assets_have_half_the_shape(items: dict[str, pystac.Item]):
    item = items["S2_DEMO_T1_20230719"]
    b04, b11, scl = read_asset(item, "B04"), read_asset(item, "B11"), read_asset(item, "SCL")
    assert b04.shape == (512, 512)
    assert b11.shape == scl.shape == (256, 256)


@pytest.mark.parametrize("band", REFLECTANCE_BANDS)
def test_reflectances_are_never_written_as_nodata(items: dict[str, pystac.Item], band: str):
    data = read_asset(items["S2_DEMO_T1_20230719"], band)
    assert data.min() >= 1
    assert 0.0 < float(np.median(data)) * 0.0001 < 1.0


def test_generation_is_deterministic(out_dir: Path, tmp_path: Path):
    """Same size, same output, whether dates are rendered in worker processes (fixture) or inline."""
    generate_demo(tmp_path, "small", workers=1)
    for band in ("B08", "SCL"):
        relative = f"{DEMO_S2_COLLECTION}/S2_DEMO_T2_20230604/S2_DEMO_T2_20230604_{band}.tif"
        with rasterio.open(out_dir / relative) as first, rasterio.open(tmp_path / relative) as second:
            np.testing.assert_array_equal(first.read(1), second.read(1))
    assert (out_dir / "parcels.geojson").read_bytes() == (tmp_path / "parcels.geojson").read_bytes()
    relative = f"{DEMO_S2_COLLECTION}/S2_DEMO_T1_20230105/S2_DEMO_T1_20230105.json"
    assert (out_dir / relative).read_text() == (tmp_path / relative).read_text()


# --- scene content --------------------------------------------------------------------------------------------


def test_clear_parcel_ndvi_matches_its_crop_curve(items: dict[str, pystac.Item], landscape: Landscape):
    """Median NDVI over a parcel's cloud- and shadow-free pixels is the NDVI its curve prescribes."""
    checked = 0
    for parcel in landscape.parcels[:40]:
        rows, cols = np.nonzero(landscape.parcel_ids == parcel.parcel_id)
        if cols.max() >= 512:  # keep to tile T1
            continue
        for item in (items[f"S2_DEMO_T1_{day:%Y%m%d}"] for day in SMALL.dates[::3]):
            scl = read_asset(item, "SCL")[rows // 2, cols // 2]
            if not np.isin(scl, [4, 5]).all():
                continue
            observed = float(np.median(ndvi(item)[rows, cols]))
            assert observed == pytest.approx(float(parcel.ndvi(day_of_year(item))), abs=0.02), (parcel, item.id)
            checked += 1
    assert checked >= 20


def test_parcels_differ_by_crop_in_summer(items: dict[str, pystac.Item], landscape: Landscape):
    """In early July, maize is near its peak while winter wheat has been harvested."""
    item = items["S2_DEMO_T1_20230704"]
    values = ndvi(item)
    by_crop: dict[str, list[float]] = {"maize": [], "winter_wheat": []}
    scl = read_asset(item, "SCL").repeat(2, axis=0).repeat(2, axis=1)
    for parcel in landscape.parcels:
        if parcel.crop in by_crop:
            inside = (landscape.parcel_ids[:, :512] == parcel.parcel_id) & np.isin(scl, [4, 5])
            if inside.sum() > 20:
                by_crop[parcel.crop].append(float(np.median(values[inside])))
    assert by_crop["maize"] and by_crop["winter_wheat"]
    assert min(by_crop["maize"]) > max(by_crop["winter_wheat"])


def test_cloudy_pixels_are_classified_as_cloud(items: dict[str, pystac.Item]):
    cloudy = [item for item in items.values() if 20 < item.properties["eo:cloud_cover"] < 80]
    assert cloudy
    for item in cloudy[:4]:
        bright = read_asset(item, "B02") > 3000  # no ground surface here is that bright in blue
        scl_10m = read_asset(item, "SCL").repeat(2, axis=0).repeat(2, axis=1)
        assert bright.any()
        assert np.isin(scl_10m[bright], CLOUD_CLASSES).all()
        assert read_asset(item, "B02")[scl_10m == 9].min() > 2000


def test_cloud_shadows_are_classified_and_dark(items: dict[str, pystac.Item], landscape: Landscape):
    item = max(items.values(), key=lambda i: np.count_nonzero(read_asset(i, "SCL") == 3))
    shadow = (read_asset(item, "SCL") == 3).repeat(2, axis=0).repeat(2, axis=1)
    clear = np.isin(read_asset(item, "SCL"), [4, 5]).repeat(2, axis=0).repeat(2, axis=1)
    assert shadow.sum() > 100
    tile_cols = slice(0, 512) if "_T1_" in item.id else slice(512, 1024)
    surface = landscape.brightness[:, tile_cols]  # red + NIR at NDVI 0, before the atmosphere
    observed = (read_asset(item, "B04").astype(float) + read_asset(item, "B08")) * 0.0001 / surface
    assert np.median(observed[shadow]) < 0.8 * np.median(observed[clear])


def test_cloud_cover_property_matches_scl(items: dict[str, pystac.Item]):
    for item in items.values():
        scl = read_asset(item, "SCL")
        expected = 100.0 * np.isin(scl, CLOUD_CLASSES).sum() / np.count_nonzero(scl)
        assert item.properties["eo:cloud_cover"] == pytest.approx(expected, abs=0.01), item.id


def test_dates_range_from_clear_to_overcast(items: dict[str, pystac.Item]):
    covers = [item.properties["eo:cloud_cover"] for item in items.values()]
    assert min(covers) == 0.0
    assert max(covers) > 80.0


def test_scene_classification_uses_land_classes(items: dict[str, pystac.Item]):
    classes = set(np.unique(read_asset(items["S2_DEMO_T1_20230719"], "SCL")).tolist())
    assert {4, 5, 6} <= classes
    assert classes <= {3, 4, 5, 6, 8, 9, 10}


# --- parcels --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parcels_geojson(out_dir: Path) -> dict:
    return json.loads((out_dir / "parcels.geojson").read_text())


def test_parcels_are_a_wgs84_feature_collection(parcels_geojson: dict, collection: pystac.Collection):
    assert parcels_geojson["type"] == "FeatureCollection"
    assert "crs" not in parcels_geojson
    features = parcels_geojson["features"]
    assert len(features) == 200
    west, south, east, north = collection.extent.spatial.bboxes[0]
    for feature in features:
        props = feature["properties"]
        assert isinstance(props["parcel_id"], int)
        assert props["crop"] in {"maize", "winter_wheat", "grassland", "sugar_beet", "vineyard"}
        assert 5_000 <= props["area_m2"] <= 50_000
        ring = feature["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1]
        assert all(round(v, 7) == v for point in ring for v in point)
        polygon = shape(feature["geometry"])
        assert polygon.exterior.is_ccw
        assert shapely.box(west, south, east, north).contains(polygon)


def test_parcels_do_not_overlap(parcels_geojson: dict):
    polygons = [shape(f["geometry"]) for f in parcels_geojson["features"]]
    tree = shapely.STRtree(polygons)
    left, right = tree.query(polygons, predicate="intersects")
    assert (left == right).all()


def test_parcels_file_matches_the_painted_parcels(parcels_geojson: dict, landscape: Landscape):
    to_utm = Transformer.from_crs(4326, 32632, always_xy=True)
    shapes = []
    for feature in parcels_geojson["features"]:
        polygon = shapely.transform(shape(feature["geometry"]),
                                    lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
        shapes.append((polygon, feature["properties"]["parcel_id"]))
        assert polygon.area == pytest.approx(feature["properties"]["area_m2"], rel=1e-3)
    rasterized = rasterio.features.rasterize(
        shapes, out_shape=landscape.scene.shape, transform=landscape.scene.transform, fill=0, dtype="int32")
    painted = landscape.parcel_ids > 0
    assert (rasterized[painted] == landscape.parcel_ids[painted]).mean() > 0.999


# --- re-running -----------------------------------------------------------------------------------------------


def test_rerun_keeps_existing_output(out_dir: Path):
    before = (out_dir / "catalog.json").stat().st_mtime_ns
    summary = generate_demo(out_dir, "small")
    assert summary.reused
    assert summary.seconds < 1.0
    assert (summary.n_items, summary.n_parcels) == (82, 200)
    assert (out_dir / "catalog.json").stat().st_mtime_ns == before


def test_overwrite_regenerates(tmp_path: Path):
    generate_demo(tmp_path, TINY, workers=1)
    assert not generate_demo(tmp_path, TINY, overwrite=True, workers=1).reused


def test_another_size_replaces_the_output(tmp_path: Path):
    generate_demo(tmp_path, TINY, workers=1)
    other = replace(TINY, name="tiny-b", dates=TINY.dates[:1])
    summary = generate_demo(tmp_path, other, workers=1)
    assert not summary.reused
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    assert catalog["terracube:demo_size"] == "tiny-b"
    assert len(list((tmp_path / DEMO_S2_COLLECTION).glob("*/*.json"))) == 2


def test_refuses_to_replace_a_foreign_catalog(tmp_path: Path):
    (tmp_path / "catalog.json").write_text(json.dumps({"type": "Catalog", "id": "mine", "links": []}))
    with pytest.raises(FileExistsError, match="not written by `terracube demo`"):
        generate_demo(tmp_path, TINY, workers=1)


def test_unknown_size_lists_the_known_ones(tmp_path: Path):
    with pytest.raises(ValueError, match="small, bench"):
        generate_demo(tmp_path, "huge")
