"""Federation readiness: the openEO federation's real aggregator (``openeo-aggregator`` from PyPI) in front
of two Terracube servers with different collections (and one they share, whose metadata the
aggregator merges), all trusting one OpenID Connect issuer (``tests/oidc``), and the real Python client
connected to the aggregator.

The aggregator runs from a virtualenv of its own (``make aggregator``: it pins Flask 2.3 and an older
openeo client), with its in-memory cache and without ZooKeeper (that is only for its partitioned jobs).
The same contract is also checked with the client against each server directly, so a machine where the
aggregator cannot be installed still tests what the federation relies on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests

from backend.devserver import free_port, running_server, stop
from tests.conftest import REPO, server_env
from tests.e2e.test_batch_jobs import EXTENT, LC, wait_for
from tests.oidc_issuer import OidcIssuer, running_issuer

openeo = pytest.importorskip("openeo")

AGGREGATOR_VENV = REPO / ".venv-aggregator"
DEM = "DEMO_DEM_SRTM30"
SHARED = "DEMO_DEM_EUDEM25"
DEM_EXTENT = {"west": 10.30, "south": 45.45, "east": 10.32, "north": 45.47}


@dataclass(frozen=True)
class Federation:
    issuer: OidcIssuer
    a: str
    """Root URL of back-end A (the Sentinel-2 demo collection, and the shared one)."""
    b: str
    """Root URL of back-end B (the SRTM demo DEM, and the shared one)."""
    work: Path

    def token(self, login: str = "alice") -> str:
        """An access token of a person (device flow of the public client; opaque, checked at userinfo,
        which is how the aggregator checks every token)."""
        return self.issuer.device_login(login)["access_token"]

    def connect(self, url: str, token: str):
        return openeo.connect(url).authenticate_oidc_access_token(token, provider_id="local")


@pytest.fixture(scope="module")
def federation(demo_data: Path, tmp_path_factory) -> Iterator[Federation]:
    work = tmp_path_factory.mktemp("federation")
    demo = demo_data / "demo"
    with running_issuer(work) as issuer:
        providers = json.dumps([issuer.provider_entry()])

        def env(name: str, *collections: str) -> dict[str, str]:
            (work / name).mkdir()
            return server_env(work / name, TERRACUBE_OIDC_PROVIDERS=providers, TERRACUBE_DEMO="false",
                              TERRACUBE_TITLE=f"Terracube {name.upper()}",
                              TERRACUBE_STAC=",".join(str(demo / c / "collection.json") for c in collections))

        with running_server(env("a", LC, SHARED), work / "a.log") as a, \
                running_server(env("b", DEM, SHARED), work / "b.log") as b:
            yield Federation(issuer, a, b, work)


# --- the same contract, the client against each back-end --------------------------------------------
def test_each_back_end_lists_its_own_collections_with_providers(federation):
    token = federation.token()
    for root, expected in ((federation.a, {LC, SHARED}), (federation.b, {DEM, SHARED})):
        collections = federation.connect(root, token).list_collections()
        assert {c["id"] for c in collections} == expected
        for collection in collections:
            assert collection["deprecated"] is False
            assert "host" in {role for p in collection["providers"] for role in p["roles"]}


def test_each_back_end_runs_result_and_a_batch_job_for_an_oidc_user(federation, tmp_path):
    token = federation.token()
    dem = federation.connect(federation.b, token).load_collection(DEM, spatial_extent=DEM_EXTENT)
    dem.download(tmp_path / "dem.tif", format="GTiff")
    with rasterio.open(tmp_path / "dem.tif") as src:
        assert np.isfinite(src.read(1)).any()
    job = _s2_max(federation.connect(federation.a, token)).create_job(out_format="GTiff")
    job.start_and_wait(max_poll_interval=1)
    assert job.status() == "finished"


def test_b_load_stacs_the_signed_result_of_a_job_on_a(federation, tmp_path):
    token = federation.token()
    a = federation.connect(federation.a, token)
    job = _s2_max(a).create_job(out_format="GTiff")
    job.start_and_wait(max_poll_interval=1)
    _assert_load_stac_elsewhere_gives_the_same_values(job, federation.connect(federation.b, token), tmp_path)


# --- through the aggregator ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def aggregator(federation: Federation) -> Iterator[str]:
    gunicorn = _aggregator_installed()
    config = federation.work / "aggregator_config.py"
    config.write_text(textwrap.dedent(f"""
        from openeo_driver.users.oidc import OidcProvider
        from openeo_aggregator.config import AggregatorBackendConfig

        config = AggregatorBackendConfig(
            id="terracube-federation-test",
            capabilities_title="Terracube federation (test)",
            capabilities_description="openeo-aggregator in front of two Terracube back-ends.",
            aggregator_backends={{"a": "{federation.a}/openeo/1.2/", "b": "{federation.b}/openeo/1.2/"}},
            oidc_providers=[OidcProvider(id="local", title="Test provider", issuer="{federation.issuer.url}")],
        )
    """))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TERRACUBE_", "PYTHON"))}
    env.update(OPENEO_BACKEND_CONFIG=str(config), OPENEO_AGGREGATOR_SIMPLE_LOGGING="1")
    log_path = federation.work / "aggregator.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "8", "--timeout", "300",
             "openeo_aggregator.app:create_app()"],
            env=env, cwd=federation.work, stdout=log, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    try:
        _wait_for_aggregator(root, process, log_path)
        yield root
    finally:
        stop(process, 20)


def _wait_for_aggregator(root: str, process: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    """Its first answers take a while (it asks both back-ends), longer than the usual start-up probe waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the aggregator exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if requests.get(f"{root}/openeo/1.2/", timeout=60).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the aggregator did not come up in {timeout} s:\n{log_path.read_text()[-4000:]}")


def _aggregator_installed() -> Path:
    """gunicorn of the aggregator's virtualenv, made with ``make aggregator`` on first use (packages from
    PyPI); skips saying why when that cannot be done here."""
    gunicorn = AGGREGATOR_VENV / "bin" / "gunicorn"
    if not (AGGREGATOR_VENV / ".installed-stamp").exists():
        done = subprocess.run(["make", "aggregator", f"PYTHON={sys.executable}"], cwd=REPO, capture_output=True,
                              text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"could not install openeo-aggregator (make aggregator): {done.stderr[-600:]}")
    return gunicorn


def test_aggregator_lists_the_collections_of_both_back_ends(federation, aggregator):
    connection = federation.connect(aggregator, federation.token())
    assert {c["id"] for c in connection.list_collections()} == {LC, DEM, SHARED}
    assert connection.describe_collection(LC)["summaries"]["federation:backends"] == ["a"]
    assert connection.describe_collection(DEM)["summaries"]["federation:backends"] == ["b"]
    shared = connection.describe_collection(SHARED)
    assert sorted(shared["summaries"]["federation:backends"]) == ["a", "b"]
    assert shared["deprecated"] is False
    assert {"Terracube A", "Terracube B"} <= {p["name"] for p in shared["providers"]}
    assert shared["cube:dimensions"]["bands"]["values"]


def test_aggregator_merges_our_metadata_without_complaint(federation, aggregator):
    connection = federation.connect(aggregator, federation.token())
    connection.describe_collection(SHARED)
    processes = {p["id"]: p for p in connection.list_processes()}
    assert {"load_collection", "load_stac", "reduce_dimension", "ndvi"} <= set(processes)
    assert processes["load_stac"].get("experimental") is True  # a proposal stays flagged after merging
    # the aggregator logs a warning for every field it cannot merge (openeo_aggregator.metadata.reporter).
    # Two are known and accepted: it merges a fixed set of summaries and drops the others (the CRS stays in
    # cube:dimensions), and it asks a 'license' link of 'proprietary' data (the demo's licence is told in
    # its description)
    known = ("Unhandled merging of summary 'proj:epsg'", "License is 'proprietary' but can not be found")
    complaints = [line for line in (federation.work / "aggregator.log").read_text().splitlines()
                  if "WARNING" in line and "openeo_aggregator.metadata" in line and not any(k in line for k in known)]
    assert complaints == []
    shared = connection.describe_collection(SHARED)
    assert shared["cube:dimensions"]["x"]["reference_system"] == 3035


def test_aggregator_routes_result_to_the_back_end_of_the_collection(federation, aggregator, tmp_path):
    connection = federation.connect(aggregator, federation.token())
    connection.load_collection(DEM, spatial_extent=DEM_EXTENT).download(tmp_path / "via.tif", format="GTiff")
    federation.connect(federation.b, federation.token()).load_collection(DEM, spatial_extent=DEM_EXTENT).download(
        tmp_path / "direct.tif", format="GTiff")
    with rasterio.open(tmp_path / "via.tif") as via, rasterio.open(tmp_path / "direct.tif") as direct:
        np.testing.assert_array_equal(via.read(), direct.read())


def test_aggregator_routes_a_batch_job_and_b_load_stacs_its_signed_result(federation, aggregator, tmp_path):
    token = federation.token()
    job = _s2_max(federation.connect(aggregator, token)).create_job(out_format="GTiff")
    assert job.job_id.startswith("a-")  # the aggregator's id names the back-end it chose
    job.start_job()
    assert wait_for(job, {"finished", "error"}, timeout=180) == "finished"
    _assert_load_stac_elsewhere_gives_the_same_values(job, federation.connect(federation.b, token), tmp_path)


# --- helpers -------------------------------------------------------------------------------------------
def _s2_max(connection):
    cube = connection.load_collection(LC, spatial_extent=EXTENT, temporal_extent=["2023-05-01", "2023-06-01"],
                                      bands=["B08"])
    return cube.reduce_dimension(dimension="t", reducer="max")


def _assert_load_stac_elsewhere_gives_the_same_values(job, other, tmp_path: Path) -> None:
    """Load the job's results by their signed (``canonical``) link on another back-end: same grid, same values."""
    results = job.get_results()
    canonical = next(link["href"] for link in results.get_metadata()["links"] if link["rel"] == "canonical")
    assert "/results/" in canonical
    files = results.download_files(tmp_path / "job")
    tif = next(f for f in files if f.suffix == ".tif")
    other.load_stac(canonical).download(tmp_path / "again.tif", format="GTiff")
    with rasterio.open(tif) as original, rasterio.open(tmp_path / "again.tif") as again:
        assert again.transform.almost_equals(original.transform)
        np.testing.assert_array_equal(again.read(1), original.read(1))
