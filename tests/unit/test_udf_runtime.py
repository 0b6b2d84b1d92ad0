"""The UDF runtime (udf/): openeo.udf entry points in confined workers, failures contained per call."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from udf.confine import landlock_abi
from udf.pool import UdfError, UdfLimits, WorkerPool

DIMS = ["t", "bands", "y", "x"]
COORDS = {
    "t": np.array(["2021-06-01", "2021-06-11", "2021-06-21"], dtype="datetime64[ns]"),
    "bands": np.array(["B04", "B08"]),
    "y": np.arange(4.0),
    "x": np.arange(5.0),
}


@pytest.fixture(scope="module")
def pool():
    pool = WorkerPool(UdfLimits(timeout_seconds=8, cpu_seconds=6, memory_bytes=2 << 30, workers=2))
    yield pool
    pool.close()


@pytest.fixture
def block() -> np.ndarray:
    return np.arange(3 * 2 * 4 * 5, dtype="float32").reshape(3, 2, 4, 5)


def run(pool, code, block, context=None, key=None):
    return pool.run(key or code, code, block, DIMS, COORDS, context if context is not None else {})


def test_apply_datacube_with_data_array_annotation(pool, block):
    code = (
        "import xarray\n"
        "def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:\n"
        "    return cube * 2\n"
    )
    values, dims, _labels, _output = run(pool, code, block)
    assert dims == DIMS
    np.testing.assert_array_equal(values, block * 2)


def test_apply_datacube_with_legacy_xarray_datacube(pool, block):
    code = (
        "from openeo.udf import XarrayDataCube\n"
        "def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:\n"
        "    array = cube.get_array()\n"
        "    return XarrayDataCube(array + context['offset'])\n"
    )
    values, _dims, _labels, _output = run(pool, code, block, {"offset": 10})
    np.testing.assert_array_equal(values, block + 10)


def test_udf_sees_dimension_labels(pool, block):
    code = (
        "def apply_datacube(cube, context):\n"
        "    assert list(cube.bands.values) == ['B04', 'B08']\n"
        "    assert str(cube.t.values[1])[:10] == '2021-06-11'\n"
        "    return (cube.sel(bands='B08') - cube.sel(bands='B04')).expand_dims(bands=['d'], axis=1)\n"
    )
    values, dims, labels, _output = run(pool, code, block)
    assert dims == DIMS and values.shape == (3, 1, 4, 5)
    assert labels["bands"] == ["d"]
    np.testing.assert_array_equal(values[:, 0], block[:, 1] - block[:, 0])


def test_apply_timeseries_gets_a_dated_series_per_pixel(pool, block):
    code = (
        "import pandas as pd\n"
        "def apply_timeseries(series: pd.Series, context: dict) -> pd.Series:\n"
        "    assert isinstance(series.index, pd.DatetimeIndex)\n"
        "    return series - series.iloc[0]\n"
    )
    values, dims, _labels, _output = run(pool, code, block)
    assert dims == DIMS
    np.testing.assert_array_equal(values, block - block[:1])


def test_apply_udf_data_entry_point(pool, block):
    code = (
        "from openeo.udf import UdfData, XarrayDataCube\n"
        "def apply_udf_data(data: UdfData):\n"
        "    cube = data.get_datacube_list()[0].get_array()\n"
        "    data.set_datacube_list([XarrayDataCube(cube * data.user_context['factor'])])\n"
    )
    values, _dims, _labels, _output = run(pool, code, block, {"factor": 3})
    np.testing.assert_array_equal(values, block * 3)


def test_printed_output_is_returned(pool, block):
    code = "def apply_datacube(cube, context):\n    print('shape', cube.shape)\n    return cube\n"
    *_rest, output = run(pool, code, block)
    assert output == "shape (3, 2, 4, 5)\n"


def test_input_may_be_modified_in_place_without_touching_the_server_copy(pool, block):
    code = "def apply_datacube(cube, context):\n    cube.values[:] = 0\n    return cube\n"
    original = block.copy()
    values, *_rest = run(pool, code, block)
    assert not values.any()
    np.testing.assert_array_equal(block, original)


def test_user_exception_shows_only_the_users_lines(pool, block):
    code = (
        "import numpy as np\n"
        "\n"
        "def helper(x):\n"
        "    return x / undefined_name\n"
        "\n"
        "def apply_datacube(cube, context):\n"
        "    return helper(cube)\n"
    )
    with pytest.raises(UdfError) as info:
        run(pool, code, block)
    message = str(info.value)
    assert info.value.kind == "user"
    assert 'File "udf.py", line 7, in apply_datacube' in message
    assert 'File "udf.py", line 4, in helper' in message
    assert "return x / undefined_name" in message
    assert "NameError: name 'undefined_name' is not defined" in message
    assert "entrypoints.py" not in message and "worker.py" not in message


def test_error_while_loading_the_module_is_reported_with_its_line(pool, block):
    code = "import numpy\n\nraise ValueError('bad configuration')\n\ndef apply_datacube(cube, context):\n    return cube\n"
    with pytest.raises(UdfError) as info:
        run(pool, code, block)
    assert 'line 3, in <module>' in str(info.value) and "ValueError: bad configuration" in str(info.value)


def test_missing_entry_point_is_explained(pool, block):
    with pytest.raises(UdfError, match="No UDF entry point found"):
        run(pool, "def something_else(x):\n    return x\n", block)


def test_non_numeric_result_is_refused(pool, block):
    code = "import xarray\ndef apply_datacube(cube, context):\n    return xarray.full_like(cube, 'a', dtype=object)\n"
    with pytest.raises(UdfError, match="numbers"):
        run(pool, code, block)


def test_infinite_loop_is_stopped_by_the_wall_clock_timeout(pool, block):
    code = "def apply_datacube(cube, context):\n    while True:\n        pass\n"
    started = time.monotonic()
    with pytest.raises(UdfError) as info:
        run(pool, code, block)
    assert info.value.kind == "timeout"
    assert time.monotonic() - started < 15


def test_sleeping_udf_is_stopped_by_the_wall_clock_timeout(pool, block):
    code = "import time\ndef apply_datacube(cube, context):\n    time.sleep(60)\n    return cube\n"
    with pytest.raises(UdfError, match="did not finish within 8 s") as info:
        run(pool, code, block)
    assert info.value.kind == "timeout"


def test_memory_bomb_is_a_memory_error(pool, block):
    code = "import numpy as np\ndef apply_datacube(cube, context):\n    big = np.ones(20 * 1024**3 // 8)\n    return cube\n"
    with pytest.raises(UdfError) as info:
        run(pool, code, block)
    assert info.value.kind == "memory"
    assert "line 3" in str(info.value) and "memory limit of a UDF is 2048 MiB" in str(info.value)


def test_os_exit_is_a_crash(pool, block):
    code = "import os\ndef apply_datacube(cube, context):\n    os._exit(3)\n"
    with pytest.raises(UdfError, match="exit code 3") as info:
        run(pool, code, block)
    assert info.value.kind == "crash"


def test_segfault_is_a_crash(pool, block):
    code = "import ctypes\ndef apply_datacube(cube, context):\n    ctypes.string_at(0)\n    return cube\n"
    with pytest.raises(UdfError, match="SIGSEGV") as info:
        run(pool, code, block)
    assert info.value.kind == "crash"


def test_pool_keeps_working_after_failures(pool, block):
    for bad in ("import os\ndef apply_datacube(cube, context):\n    os._exit(1)\n",
                "def apply_datacube(cube, context):\n    raise RuntimeError('no')\n"):
        with pytest.raises(UdfError):
            run(pool, bad, block)
    values, *_rest = run(pool, "def apply_datacube(cube, context):\n    return cube + 1\n", block)
    np.testing.assert_array_equal(values, block + 1)


def test_environment_holds_no_server_secret(block, monkeypatch):
    monkeypatch.setenv("TERRACUBE_SECRET", "do-not-leak")
    monkeypatch.setenv("TERRACUBE_DATABASE_URL", "postgresql://user:pw@db/terracube")
    pool = WorkerPool(UdfLimits(timeout_seconds=20, workers=1))
    try:
        code = (
            "import os\n"
            "def apply_datacube(cube, context):\n"
            "    print(sorted(os.environ))\n"
            "    leaked = [k for k in os.environ if 'TERRACUBE' in k or 'do-not-leak' in os.environ[k]]\n"
            "    return cube * 0 + len(leaked)\n"
        )
        values, _dims, _labels, output = run(pool, code, block)
        assert not values.any()
        assert "TERRACUBE" not in output
    finally:
        pool.close()


def test_working_directory_is_a_private_temporary_folder(pool, block):
    code = (
        "import os\n"
        "def apply_datacube(cube, context):\n"
        "    open('scratch.txt', 'w').write('ok')\n"
        "    print(os.getcwd(), os.listdir('.'))\n"
        "    return cube\n"
    )
    *_rest, output = run(pool, code, block)
    assert "terracube-udf-" in output and "scratch.txt" in output


@pytest.mark.skipif(landlock_abi() < 1, reason="the kernel offers no Landlock: the file system is not confined")
@pytest.mark.parametrize("path", ["/etc/passwd", "/proc/1/environ", "DATA_FILE"])
def test_files_outside_the_sandbox_cannot_be_read(pool, block, tmp_path, path):
    if path == "DATA_FILE":
        secret = tmp_path / "job-results.json"
        secret.write_text("someone else's data")
        path = str(secret)
    code = (
        "def apply_datacube(cube, context):\n"
        "    try:\n"
        "        open(context['path']).read()\n"
        "    except OSError:\n"
        "        return cube * 0\n"
        "    return cube * 0 + 1\n"
    )
    values, *_rest = run(pool, code, block, {"path": path})
    assert not values.any(), f"the UDF could read {path}"


@pytest.mark.skipif(landlock_abi() < 4, reason="the kernel's Landlock cannot restrict TCP")
def test_network_connections_are_refused(pool, block):
    code = (
        "import socket\n"
        "def apply_datacube(cube, context):\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', 9), timeout=2)\n"
        "    except PermissionError:\n"
        "        return cube * 0\n"
        "    except OSError:\n"
        "        return cube * 0 + 1\n"
        "    return cube * 0 + 1\n"
    )
    values, *_rest = run(pool, code, block)
    assert not values.any()


@pytest.mark.skipif(landlock_abi() < 6, reason="the kernel's Landlock cannot scope signals")
def test_udf_cannot_signal_the_server(pool, block):
    code = (
        "import os, signal\n"
        "def apply_datacube(cube, context):\n"
        "    try:\n"
        "        os.kill(context['pid'], signal.SIGTERM)\n"
        "    except PermissionError:\n"
        "        return cube * 0\n"
        "    return cube * 0 + 1\n"
    )
    values, *_rest = run(pool, code, block, {"pid": os.getpid()})
    assert not values.any()


def test_workers_are_not_shared_between_users(pool, block):
    code = (
        "import os\n"
        "state = []\n"
        "def apply_datacube(cube, context):\n"
        "    state.append(1)\n"
        "    return cube * 0 + len(state)\n"
    )
    first, *_rest = pool.run("alice", code, block, DIMS, COORDS, {})
    second, *_rest = pool.run("alice", code, block, DIMS, COORDS, {})
    other, *_rest = pool.run("bob", code, block, DIMS, COORDS, {})
    assert first.max() == 1 and second.max() == 2  # one worker kept alice's module
    assert other.max() == 1  # bob's call never ran in alice's worker


def test_blocks_run_in_parallel_on_several_workers(pool, block):
    code = "import time, os\ndef apply_datacube(cube, context):\n    time.sleep(1)\n    return cube * 0 + os.getpid()\n"

    def two_at_once() -> tuple[set[int], float]:
        pids: list[int] = []
        threads = [threading.Thread(target=lambda: pids.append(int(run(pool, code, block)[0].max())))
                   for _ in range(2)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return set(pids), time.monotonic() - started

    two_at_once()  # binds two workers to this code
    pids, seconds = two_at_once()
    assert len(pids) == 2
    assert seconds < 1.9  # the two 1 s blocks overlapped
