"""A job's progress is one figure that only goes forward, across every output it writes."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd

from backend.jobs.results import save_job_result
from processes.formats.blocks import ProgressMeter, progress_meter
from processes.model.raster_cube import new_cube


def _multi_date_cube(dates: int = 4, size: int = 2048):
    data = da.random.random((dates, 1, size, size), chunks=(1, 1, 512, 512)).astype("float32")
    return new_cube(data, {
        "t": ("temporal", pd.date_range("2023-05-01", periods=dates, freq="5D").values),
        "bands": ("bands", ["B04"]),
        "y": ("spatial", 5_040_000 - 5 - 10 * np.arange(size)),
        "x": ("spatial", 600_000 + 5 + 10 * np.arange(size)),
    }, crs=32632)


def test_the_meter_plans_every_output_and_never_goes_back():
    shown: list[float] = []
    meter = ProgressMeter(shown.append)
    meter.expect_outputs(3)
    for blocks in (4, 4, 8):  # the last output has more blocks than planned
        meter.start_output(blocks)
        for _ in range(blocks):
            meter.block_done()
    assert shown == sorted(shown) and len(set(shown)) == len(shown)
    assert shown[0] < 10 and shown[-1] == 99.0


def test_a_multi_date_gtiff_job_reports_rising_progress_over_all_its_files(tmp_path):
    shown: list[float] = []
    messages: list[str] = []
    token = progress_meter.set(ProgressMeter(shown.append))
    try:
        files = save_job_result(_multi_date_cube(), tmp_path, lambda level, message: messages.append(message))
    finally:
        progress_meter.reset(token)
    assert len(files) == 4
    assert shown == sorted(shown) and shown[0] < 10 and shown[-1] >= 95
    assert messages[0].startswith("Writing result_2023-05-01") and messages[-1].endswith("(4 of 4).")
