"""Several servers on one machine: each with its own data dir, runner and Dask cluster, no shared port
or socket; both run jobs at the same time."""

from __future__ import annotations

from contextlib import ExitStack

import openeo

from backend.devserver import running_server
from tests.conftest import server_env

EXTENT = {"west": 601000, "south": 5036000, "east": 601500, "north": 5036500, "crs": 32632}


def test_two_servers_run_jobs_side_by_side(demo_data, tmp_path):
    with ExitStack() as stack:
        servers = []
        for name in ("one", "two"):
            data_dir = tmp_path / name
            data_dir.mkdir()
            (data_dir / "demo").symlink_to(demo_data / "demo", target_is_directory=True)
            root = stack.enter_context(running_server(server_env(data_dir), tmp_path / f"{name}.log"))
            servers.append(root)
        jobs = []
        for root in servers:
            connection = openeo.connect(root).authenticate_basic("demo", "demo")
            cube = connection.load_collection("DEMO_SENTINEL2_L2A", spatial_extent=EXTENT,
                                              temporal_extent=["2023-05-01", "2023-05-10"], bands=["B04"])
            job = cube.create_job(out_format="GTiff")
            job.start()
            jobs.append(job)
        for job in jobs:
            job.start_and_wait(max_poll_interval=1, print=lambda *_: None)
            assert job.status() == "finished"
    for name in ("one", "two"):
        log = (tmp_path / f"{name}.log").read_text()
        assert "already in use" not in log and "Address in use" not in log, log[-2000:]
