"""Batch jobs through the real openEO client: run, results, logs, cancel, users kept apart."""

from __future__ import annotations

import time

import numpy as np
import openeo
import openeo.rest
import pystac
import pytest
import rasterio
import requests

from tests.e2e.test_python_client import direct_ndvi_max

LC = "DEMO_SENTINEL2_L2A"
BOUNDS = (601000.0, 5036000.0, 602000.0, 5037000.0)
EXTENT = {"west": BOUNDS[0], "south": BOUNDS[1], "east": BOUNDS[2], "north": BOUNDS[3], "crs": 32632}


def ndvi_max(connection, dates=("2023-05-01", "2023-06-01")):
    cube = connection.load_collection(LC, spatial_extent=EXTENT, temporal_extent=list(dates), bands=["B04", "B08"])
    return cube.ndvi().reduce_dimension(dimension="t", reducer="max")


def wait_for(job, statuses, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = job.status()
        if status in statuses:
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job.job_id} still {job.status()} after {timeout} s")


def test_batch_job_results_match_direct_computation(connection, live_server, tmp_path):
    job = ndvi_max(connection).create_job(title="ndvi max", out_format="GTiff")
    job.start_and_wait(max_poll_interval=1)
    assert job.describe()["progress"] == 100
    files = job.get_results().download_files(tmp_path)
    tif = [f for f in files if f.suffix == ".tif"]
    assert len(tif) == 1
    expected, transform = direct_ndvi_max(live_server.data_dir / "demo" / "catalog.json", LC, BOUNDS,
                                          "2023-05-01", "2023-06-01")
    with rasterio.open(tif[0]) as src:
        assert src.transform.almost_equals(transform)
        np.testing.assert_allclose(src.read(1), expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_results_are_a_valid_stac_collection_with_signed_links(connection):
    job = ndvi_max(connection).create_job(out_format="GTiff")
    job.start_and_wait(max_poll_interval=1)
    metadata = job.get_results().get_metadata()
    collection = pystac.Collection.from_dict(metadata)
    asset = next(iter(collection.assets.values()))
    assert asset.media_type.startswith("image/tiff") and asset.roles == ["data"]
    fields = asset.extra_fields
    assert fields["proj:epsg"] == 32632 and fields["proj:shape"] == [100, 100]
    assert fields["file:size"] > 0 and fields["raster:bands"][0]["data_type"] == "float32"
    # the signed link works without credentials, with HTTP ranges
    response = requests.get(asset.href, headers={"Range": "bytes=0-99"}, timeout=30)
    assert response.status_code == 206 and len(response.content) == 100
    canonical = next(link["href"] for link in metadata["links"] if link["rel"] == "canonical")
    assert requests.get(canonical, timeout=30).json()["id"] == job.job_id


def test_execute_batch_with_several_dates_gives_one_cog_per_date(connection, tmp_path):
    cube = connection.load_collection(LC, spatial_extent=EXTENT, temporal_extent=["2023-05-01", "2023-06-01"],
                                      bands=["B04"])
    job = cube.execute_batch(outputfile=None, out_format="GTiff", max_poll_interval=1)
    names = sorted(job.get_results().get_metadata()["assets"])
    assert names == ["result_2023-05-05T103000Z.tif", "result_2023-05-20T103000Z.tif"]


def test_a_job_that_validation_rejects_is_refused_when_created(connection):
    graph = {
        "load": {"process_id": "load_collection", "arguments": {
            "id": LC, "spatial_extent": EXTENT, "temporal_extent": ["2023-05-01", "2023-06-01"], "bands": ["B04"]}},
        "reduce": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "nope", "reducer": {"process_graph": {"max": {
                "process_id": "max", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}},
            "result": True},
    }
    before = {j["id"] for j in connection.list_jobs()}
    with pytest.raises(openeo.rest.OpenEoApiError) as err:
        connection.create_job(graph)  # raw graph: the client would refuse the unknown dimension itself
    assert err.value.http_status_code == 400 and err.value.code == "DimensionNotAvailable"
    assert "nope" in err.value.message
    assert {j["id"] for j in connection.list_jobs()} == before


@pytest.mark.parametrize(("change", "code"), [
    ({"bands": ["B99"]}, "ProcessParameterInvalid"),
    ({"id": "NO_SUCH_COLLECTION"}, "CollectionNotFound"),
])
def test_unknown_bands_and_collections_are_refused_at_creation(live_server, change, code):
    arguments = {"id": LC, "spatial_extent": EXTENT, "temporal_extent": ["2023-05-01", "2023-06-01"],
                 "bands": ["B04"], **change}
    body = {"process": {"process_graph": {"load": {"process_id": "load_collection", "arguments": arguments,
                                                   "result": True}}}}
    response = requests.post(f"{live_server.api}/jobs", json=body, headers=live_server.headers(), timeout=30)
    assert response.status_code in (400, 404) and response.json()["code"] == code


FAILING_UDF = """
import xarray

def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    raise ValueError("the detector needs band nope")
"""


def test_failing_job_reports_the_root_cause_and_its_node_in_logs_and_status(connection):
    cube = connection.load_collection(LC, spatial_extent=EXTENT, temporal_extent=["2023-05-01", "2023-06-01"],
                                      bands=["B04"])
    job = cube.apply(openeo.UDF(FAILING_UDF)).create_job(out_format="GTiff")
    job.start()
    assert wait_for(job, {"error", "finished"}) == "error"
    errors = [entry for entry in job.logs() if entry["level"] == "error"]
    assert errors and "UdfFailed" in errors[0]["message"] and "band nope" in errors[0]["message"]
    assert "node" in errors[0]["message"]
    response = connection.get(f"/jobs/{job.job_id}/results", expected_status=424)
    assert "band nope" in response.json()["message"]


def test_canceled_job_stays_canceled(connection):
    cube = connection.load_collection(LC, spatial_extent=None, temporal_extent=["2023-01-01", "2024-01-01"])
    job = cube.create_job(out_format="netCDF")
    job.start()
    job.stop()
    assert job.status() == "canceled"
    time.sleep(3)
    assert job.status() == "canceled"
    assert any("canceled" in entry["message"] for entry in job.logs())


def test_users_cannot_see_each_others_jobs(connection, live_server):
    import openeo

    job = ndvi_max(connection).create_job(title="private")
    alice = openeo.connect(live_server.root).authenticate_basic("alice", "alice-secret")
    assert job.job_id not in [j["id"] for j in alice.list_jobs()]
    response = requests.get(f"{live_server.api}/jobs/{job.job_id}", headers=live_server.headers("alice"), timeout=10)
    assert response.status_code == 404 and response.json()["code"] == "JobNotFound"
    response = requests.post(f"{live_server.api}/jobs/{job.job_id}/results", headers=live_server.headers("alice"),
                             timeout=10)
    assert response.status_code == 404


def test_job_metadata_can_be_updated_and_the_job_deleted(connection, live_server):
    job = ndvi_max(connection).create_job(title="before")
    connection.patch(f"/jobs/{job.job_id}", json={"title": "after"}, expected_status=204)
    assert job.describe()["title"] == "after"
    job.delete()
    response = requests.get(f"{live_server.api}/jobs/{job.job_id}", headers=live_server.headers(), timeout=10)
    assert response.status_code == 404


@pytest.mark.parametrize("body, code", [
    ({"title": "no process"}, "ProcessGraphMissing"),
    ({"process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
                                    "b": {"process_id": "add", "arguments": {"x": 1, "y": 2}}}}},
     "ProcessGraphInvalid"),
])
def test_invalid_job_requests(live_server, body, code):
    response = requests.post(f"{live_server.api}/jobs", json=body, headers=live_server.headers(), timeout=10)
    assert response.status_code == 400 and response.json()["code"] == code


def test_estimate_counts_the_values_the_job_reads(connection):
    job = ndvi_max(connection).create_job()
    estimate = job.estimate()
    # 2 dates × 2 bands × 100 × 100 pixels
    assert estimate["usage"]["values_read"] == 40_000
    assert estimate["duration"].startswith("PT") and estimate["size"] == 100 * 100 * 4


def test_logs_can_be_filtered_by_level_and_paged(connection, live_server):
    job = ndvi_max(connection).create_job(out_format="GTiff")
    job.start_and_wait(max_poll_interval=1)
    api = f"{live_server.api}/jobs/{job.job_id}/logs"
    headers = live_server.headers()
    everything = requests.get(api, headers=headers, timeout=10).json()["logs"]
    assert [e["message"] for e in everything][:2] == ["Job queued.", "Job started."]
    first = requests.get(api, params={"limit": 1}, headers=headers, timeout=10).json()
    assert len(first["logs"]) == 1 and first["links"][0]["rel"] == "next"
    rest = requests.get(api, params={"offset": first["logs"][0]["id"]}, headers=headers, timeout=10).json()["logs"]
    assert [e["id"] for e in rest] == [e["id"] for e in everything[1:]]
    assert requests.get(api, params={"level": "error"}, headers=headers, timeout=10).json()["logs"] == []


def test_job_results_can_be_loaded_again_with_load_stac(connection, tmp_path):
    source = connection.load_collection(LC, spatial_extent=EXTENT, temporal_extent=["2023-05-01", "2023-06-01"],
                                        bands=["B08"])
    job = source.create_job(out_format="GTiff")
    job.start_and_wait(max_poll_interval=1)
    canonical = next(link["href"] for link in job.get_results().get_metadata()["links"] if link["rel"] == "canonical")
    again = connection.load_stac(canonical).reduce_dimension(dimension="t", reducer="max")
    target = tmp_path / "again.tif"
    again.download(target, format="GTiff")
    direct = source.reduce_dimension(dimension="t", reducer="max")
    direct.download(tmp_path / "direct.tif", format="GTiff")
    with rasterio.open(target) as a, rasterio.open(tmp_path / "direct.tif") as b:
        assert a.transform == b.transform
        np.testing.assert_array_equal(a.read(1), b.read(1))


def _job_pid(live_server, job_id: str) -> int | None:
    """The job's process as the store records it."""
    import sqlalchemy as sa

    from backend.jobs.store import jobs_table, make_engine
    from backend.settings import Settings

    engine = make_engine(Settings(data_dir=live_server.data_dir).job_store_url)
    with engine.connect() as conn:
        return conn.execute(sa.select(jobs_table.c.pid).where(jobs_table.c.id == job_id)).scalar()


def test_a_job_runs_in_the_warm_standby_process_with_its_output_in_process_log(connection, live_server):
    cube = connection.load_collection(LC, spatial_extent=EXTENT, temporal_extent=["2023-05-01", "2023-05-10"],
                                      bands=["B04"])
    lines: list[str] = []
    for _ in range(3):
        # A standby is started a moment after each job starts and needs ~3 s to get ready; a job
        # claimed before that runs cold (correct, just slower): the pause gives the next one its standby.
        time.sleep(4)
        job = cube.create_job(out_format="GTiff")
        job.start_and_wait(max_poll_interval=1)
        log = (live_server.data_dir / "jobs" / job.job_id / "process.log").read_text()
        # the standby wrote this after handing its output over to the job's log
        lines = [line for line in log.splitlines() if line.startswith("Standby job process")]
        if lines:
            break
    [line] = lines
    assert f"runs job {job.job_id}" in line
    assert f"process {_job_pid(live_server, job.job_id)} " in line


def test_canceling_a_job_running_in_a_standby_ends_its_process(connection, live_server):
    import os

    cube = connection.load_collection(LC, spatial_extent=None, temporal_extent=["2023-01-01", "2024-01-01"])
    job = cube.create_job(out_format="netCDF")
    job.start()
    wait_for(job, {"running", "finished", "error"})
    deadline = time.monotonic() + 60
    while (pid := _job_pid(live_server, job.job_id)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid is not None
    job.stop()
    assert job.status() == "canceled"

    def alive() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # ended, not yet reaped by its runner
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 60
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive()
    assert job.status() == "canceled"


def test_a_finished_job_reports_what_its_run_used(connection):
    job = ndvi_max(connection).create_job(out_format="GTiff")
    job.start_and_wait(max_poll_interval=1, print=lambda *_: None)
    usage = job.describe()["usage"]
    assert usage["duration"]["unit"] == "seconds" and usage["duration"]["value"] > 0
    assert usage["cpu"]["unit"] == "cpu-seconds" and usage["cpu"]["value"] > 0
    assert usage["memory"]["unit"] == "mb" and usage["memory"]["value"] > 50
    assert usage["input_pixels"]["value"] == 2 * 2 * 100 * 100  # 2 dates x B04/B08 x 100 x 100 px
    size = sum(asset.href and requests.get(asset.href, timeout=30).headers.get("Content-Length") and
               int(requests.get(asset.href, timeout=30).headers["Content-Length"])
               for asset in job.get_results().get_assets())
    assert usage["result_bytes"]["value"] == size
