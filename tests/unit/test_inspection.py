"""inspect logs a description of its data for the user and returns the data unchanged."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.library.inspection import inspect
from processes.model.raster_cube import new_cube


def test_inspect_logs_a_cube_description_without_computing():
    entries = []
    env = ProcessEnv(collections=None, log=lambda level, message, data: entries.append((level, message, data)))
    cube = new_cube(da.zeros((2, 3), chunks=1), {"y": ("spatial", [1, 0]), "x": ("spatial", [0, 1, 2])}, crs=4326)
    assert inspect(cube, message="here", level="warning", env=env) is cube
    level, message, data = entries[0]
    assert (level, message) == ("warning", "here")
    assert data["data"]["dimensions"]["x"] == {"type": "spatial", "size": 3, "labels": ["0", "1", "2"]}
    assert data["data"]["crs"] == "EPSG:4326"


def test_inspect_passes_plain_values_through():
    entries = []
    env = ProcessEnv(collections=None, log=lambda *entry: entries.append(entry))
    assert inspect([1, 2], env=env) == [1, 2]
    assert entries[0][2]["data"] == [1, 2]


def test_inspect_rejects_unknown_levels():
    with pytest.raises(OpenEOError, match="level"):
        inspect(np.float64(1), level="loud", env=ProcessEnv(collections=None))
