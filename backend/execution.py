"""Running a process graph for a request: environment, evaluation, time limit, result file.

The same evaluator serves ``/result`` and ``/validation`` (and later batch jobs and tiles); only
the :class:`processes.env.ProcessEnv` differs. Synchronous runs have size limits and a wall-clock
deadline, enforced between Dask tasks so that a run past its time stops computing and answers
with a ``RequestTimeout`` error instead of occupying a worker.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
from dask.callbacks import Callback

from backend.app import Services
from backend.workspace import Workspace
from processes import processing_parameters
from processes.env import Limits, ProcessEnv
from processes.errors import OpenEOError, RequestTimeout
from processes.graph import Evaluator
from processes.processing_parameters import ProcessingOptions
from processes.save import SaveResult


@dataclass(frozen=True)
class SyncResult:
    """What a synchronous run produced: a file to stream, or a JSON value."""

    path: Path | None = None
    media_type: str = "application/json"
    filename: str | None = None
    value: Any = None

    def cleanup(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path.parent, ignore_errors=True)


class _Deadline(Callback):
    def __init__(self, seconds: float):
        super().__init__()
        self._deadline = time.monotonic() + seconds
        self._seconds = seconds

    def _pretask(self, key, dsk, state):
        if time.monotonic() > self._deadline:
            raise RequestTimeout(
                f"The computation took longer than the {self._seconds:.0f} s allowed for synchronous "
                "processing. Narrow the extents or run it as a batch job."
            )


def process_document(body: Any) -> Any:
    """The process (``{"process_graph", …}``) of a request body; the body itself if it is one."""
    process = body.get("process") if isinstance(body, dict) else None
    return process if process is not None else body


def sync_env(services: Services, user_id: str | None, *, validate_only: bool = False) -> ProcessEnv:
    settings = services.settings
    return ProcessEnv(
        collections=services.catalog,
        user_id=user_id,
        limits=Limits(max_pixels=settings.sync_max_pixels),
        validate_only=validate_only,
        user_processes=functools.partial(services.udps.lookup, user_id),
        user_file=Workspace(settings.workspaces_dir, user_id).resolve if user_id else None,
    )


def evaluate_request(services: Services, body: Any, env: ProcessEnv, mode: str,
                     parameters: Mapping[str, Any] | None = None) -> Any:
    """Parse and evaluate the graph of a request body lazily (nothing is computed).

    The processing parameters are the request's (``parameters`` if given, else read off ``body``),
    over the defaults its process declares (``default_job_parameters`` …).
    """
    given = processing_parameters.from_request(body, mode) if parameters is None else dict(parameters)
    env = dataclasses.replace(env, options=ProcessingOptions(mode, given))
    return Evaluator(services.registry, env).evaluate_process(process_document(body))


def validate(services: Services, body: Any, user_id: str) -> list[dict[str, str]]:
    """Errors of a process graph as ``[{"code", "message"}]`` (empty when valid); computes nothing."""
    try:
        evaluate_request(services, body, sync_env(services, user_id, validate_only=True), "synchronous")
    except OpenEOError as err:
        return [{"code": err.code, "message": err.message}]
    return []


def run_sync(services: Services, body: Any, user_id: str) -> SyncResult:
    """Evaluate and compute. A file result lies in its own temporary folder: call ``cleanup()``."""
    value = evaluate_request(services, body, sync_env(services, user_id), "synchronous")
    settings = services.settings
    with _Deadline(settings.sync_timeout_seconds), dask.config.set(scheduler="threads"):
        if not isinstance(value, SaveResult):
            from processes.formats.json import special_floats_kept, to_json_value

            with special_floats_kept():
                return SyncResult(value=to_json_value(value))
        folder = Path(tempfile.mkdtemp(dir=settings.tmp_dir, prefix="result-"))
        try:
            target = folder / value.filename
            value.write(target)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return SyncResult(path=target, media_type=value.media_type, filename=value.filename)


# Synchronous NDVI composites on the 2-core reference machine read 14–42 million values per second
# (demo and Bolzano data); the estimate takes the slow end per core and adds a third for writing.
VALUES_PER_SECOND_PER_CORE = 7e6


def estimate(services: Services, process: Any, user_id: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """An estimate of a batch job from what its graph loads (no pixel is read)."""
    import os

    env = dataclasses.replace(sync_env(services, user_id, validate_only=True), limits=Limits())  # batch: no limits
    value = evaluate_request(services, process, env, "job", parameters)
    values = sum(load["values"] for load in env.loads)
    cores = os.cpu_count() or 1
    seconds = max(1.0, 1.35 * values / (VALUES_PER_SECOND_PER_CORE * cores))
    data = value.data if isinstance(value, SaveResult) else value
    size = int(getattr(data, "nbytes", 0))
    return {
        "duration": f"PT{int(round(seconds))}S",
        "size": size,
        "costs": 0,
        "downloads_included": None,
        "expires": None,
        "usage": {"values_read": values, "items": sum(load["items"] for load in env.loads)},
    }
