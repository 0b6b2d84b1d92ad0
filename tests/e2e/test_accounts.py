"""Accounts through the real server and the real openEO client: per-user limits refused with clear errors,
usage and costs in ``/me``, billing in the capabilities, and ``/health`` with its parts up and down.

The server of this module has no embedded job runner: jobs stay queued (so the running-jobs limit can
be reached without racing a runner) until a test starts a ``terracube worker`` next to it, the way an
operator runs separate workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openeo
import openeo.rest
import pytest
import requests

from backend.devserver import REPO, running_server
from tests.conftest import LiveServer, server_env
from tests.postgres_server import throwaway_postgres

LC = "DEMO_SENTINEL2_L2A"
EXTENT = {"west": 601000.0, "south": 5036000.0, "east": 602000.0, "north": 5037000.0, "crs": 32632}
PRICES = {"currency": "EUR", "cpu_seconds": 0.5, "result_gb": 100.0, "plan": "research"}
LIMITS = {"user": {"running_jobs": 1, "workspace_mb": 1, "sync_pixels": 1000}}


def accounts_env(data_dir: Path, demo_data: Path, **extra: str) -> dict[str, str]:
    return server_env(
        data_dir, TERRACUBE_DEMO="false", TERRACUBE_STAC=str(demo_data / "demo" / "catalog.json"),
        TERRACUBE_LIMITS=json.dumps(LIMITS), TERRACUBE_ADMINS="alice", TERRACUBE_PRICES=json.dumps(PRICES),
        TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS="8", **extra,
    )


@pytest.fixture(scope="module")
def server(demo_data, tmp_path_factory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("accounts")
    env = accounts_env(data_dir, demo_data, TERRACUBE_EMBEDDED_RUNNER="false")
    with running_server(env, data_dir / "server.log") as root:
        yield LiveServer(root, data_dir)


@contextmanager
def worker(settings_env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """``terracube worker``: a job runner of its own, as an operator starts one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERRACUBE_")} | settings_env
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "backend.cli", "worker"], env=env, cwd=REPO,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)


def connect(server: LiveServer, user: str = "demo") -> openeo.Connection:
    from tests.conftest import USERS

    return openeo.connect(server.root).authenticate_basic(user, USERS[user])


def small_cube(connection):
    return connection.load_collection(LC, spatial_extent=EXTENT, temporal_extent=["2023-05-01", "2023-06-01"],
                                      bands=["B04"]).reduce_dimension(dimension="t", reducer="max")


def health(server: LiveServer, prefix: str = "") -> requests.Response:
    return requests.get(f"{server.root}{prefix}/health", timeout=30)


def wait_for_health(server: LiveServer, status: int, timeout: float = 90, prefix: str = "",
                    down: str | None = None) -> dict:
    """The report once ``/health`` answers ``status`` (with ``down`` among the parts down): each API
    worker caches its report for a few seconds, so workers may differ for that long."""
    deadline = time.monotonic() + timeout
    while True:
        response = health(server, prefix)
        if response.status_code == status and (down is None or down in response.json().get("down", [])):
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"/health still answers {response.status_code}: {response.text}")
        time.sleep(1)


# --- limits ----------------------------------------------------------------------------------------
def test_starting_a_job_over_the_running_jobs_limit_is_refused_with_a_clear_error(server):
    connection = connect(server)
    first, second = small_cube(connection).create_job(), small_cube(connection).create_job()
    first.start()
    try:
        with pytest.raises(openeo.rest.OpenEoApiError) as refused:
            second.start()
        assert refused.value.http_status_code == 400 and refused.value.code == "ConcurrentJobLimit"
        assert "at once (1)" in refused.value.message and "cancel one" in refused.value.message
        assert second.status() == "created"  # refused, not queued silently
        first.stop()
        second.start()  # room again once the first is canceled
        assert second.status() == "queued"
    finally:
        first.stop()
        second.stop()


def test_an_admin_has_no_running_jobs_limit(server):
    connection = connect(server, "alice")
    jobs = [small_cube(connection).create_job() for _ in range(3)]
    try:
        for job in jobs:
            job.start()
        assert [job.status() for job in jobs] == ["queued"] * 3
    finally:
        for job in jobs:
            job.stop()


def test_an_upload_over_the_workspace_quota_is_refused_and_stores_nothing(server, tmp_path):
    connection = connect(server)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 2**19))  # 1.5 MiB, over the quota of 1 MiB
    with pytest.raises(openeo.rest.OpenEoApiError) as refused:
        connection.upload_file(big, target="big.bin")
    assert refused.value.http_status_code == 400 and refused.value.code == "StorageQuotaExceeded"
    assert "1.0 MiB" in refused.value.message and "DELETE /files" in refused.value.message
    assert connection.list_files() == []
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    connection.upload_file(small, target="small.bin").delete()


def test_a_synchronous_request_over_the_users_size_limit_is_refused_but_not_an_admins(server, tmp_path):
    with pytest.raises(openeo.rest.OpenEoApiError) as refused:
        small_cube(connect(server)).download(tmp_path / "demo.tif")
    assert refused.value.code == "ProcessGraphComplexity"
    assert "sync_pixels of TERRACUBE_LIMITS" in refused.value.message and "batch job" in refused.value.message
    small_cube(connect(server, "alice")).download(tmp_path / "alice.tif")
    assert (tmp_path / "alice.tif").stat().st_size > 0


# --- health ----------------------------------------------------------------------------------------
def test_health_names_a_missing_job_runner_until_a_worker_reports(server, demo_data):
    for prefix in ("", "/openeo/1.2"):
        response = health(server, prefix)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "down" and body["down"] == ["job_runner"]
        assert "terracube worker" in body["message"]
        assert body["parts"]["job_store"]["status"] == "ok" and body["parts"]["stac"]["collections"] >= 1
    with worker(accounts_env(server.data_dir, demo_data, TERRACUBE_EMBEDDED_RUNNER="false"),
                server.data_dir / "worker.log"):
        body = wait_for_health(server, 200)
        assert body["status"] == "ok" and body["parts"]["job_runner"]["runners"] == 1
        wait_for_health(server, 200, prefix="/openeo/1.2")


# --- usage and billing -----------------------------------------------------------------------------
def test_me_shows_usage_limits_and_costs_after_a_job(server, demo_data):
    connection = connect(server)
    before = connection.describe_account()
    assert before["roles"] == ["user"] and before["limits"]["running_jobs"] == 1
    assert before["storage"] == {"free": 2**20, "quota": 2**20} and before["default_plan"] == "research"
    with worker(accounts_env(server.data_dir, demo_data, TERRACUBE_EMBEDDED_RUNNER="false"),
                server.data_dir / "worker.log"):
        job = small_cube(connection).create_job(out_format="GTiff")
        job.start_and_wait(max_poll_interval=1)
    described = job.describe()
    assert described["usage"]["cpu"]["value"] > 0
    assert described["costs"] == pytest.approx(
        0.5 * described["usage"]["cpu"]["value"] + 100.0 * described["usage"]["result_bytes"]["value"] / 1e9,
        rel=1e-3)
    usage = connection.describe_account()["usage"]
    assert usage["jobs"] == before["usage"]["jobs"] + 1
    assert usage["cpu_seconds"] >= before["usage"]["cpu_seconds"] + described["usage"]["cpu"]["value"] - 0.01
    written = described["usage"]["result_bytes"]["value"]
    assert written <= usage["result_bytes"] <= written + 10_000  # the files and their STAC document
    assert usage["costs"] == pytest.approx(before["usage"]["costs"] + described["costs"], rel=1e-3)


def test_billing_is_in_the_capabilities_with_a_price_list_only(server, live_server):
    billing = requests.get(f"{server.api}/", timeout=30).json()["billing"]
    assert billing["currency"] == "EUR" and billing["default_plan"] == "research"
    assert "0.5 EUR per CPU second" in billing["plans"][0]["description"]
    assert "billing" not in requests.get(f"{live_server.api}/", timeout=30).json()
    assert "costs" not in requests.get(f"{live_server.api}/me", headers=live_server.headers(), timeout=30).json().get(
        "usage", {})


# --- health of a job store that goes away ------------------------------------------------------------


def test_health_names_a_job_store_that_is_gone_and_reveals_no_secret(demo_data, tmp_path):
    password, secret = "db-Pa55word-never-shown", "token-secret-never-shown-0123456789abcdef"
    with throwaway_postgres() as (port, stop_database):
        env = accounts_env(tmp_path, demo_data, TERRACUBE_SECRET=secret,
                           TERRACUBE_DATABASE_URL=f"postgresql+psycopg://postgres:{password}@127.0.0.1:{port}/postgres")
        with running_server(env, tmp_path / "server.log") as root:
            live = LiveServer(root, tmp_path)
            body = wait_for_health(live, 200)  # once the embedded runner has reported
            assert set(body["parts"]) == {"job_store", "job_runner", "dask", "stac"}
            stop_database()
            body = wait_for_health(live, 503, timeout=30, down="job_store")
            assert "TERRACUBE_DATABASE_URL" in body["message"] and body["parts"]["job_store"]["status"] == "down"
            text = json.dumps(wait_for_health(live, 503, timeout=30, prefix="/openeo/1.2", down="job_store"))
    log = (tmp_path / "server.log").read_text()
    for revealing in (password, secret, str(port), str(tmp_path), str(demo_data)):
        assert revealing not in text
    assert password not in log and secret not in log
