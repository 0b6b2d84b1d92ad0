"""Synchronous processing: ``POST /result`` runs a graph here, ``POST /validation`` checks one.

The graph is evaluated by :mod:`backend.evaluation` with the synchronous limits, then computed on
local threads while a wall-clock deadline is enforced between Dask tasks, so a run past its time
stops computing and answers ``RequestTimeout`` instead of occupying a worker. A file result is
written into a temporary folder of its own, which the view streams and then removes.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
from dask.callbacks import Callback

from backend.evaluation import check, evaluate, process_env
from backend.services import Services
from processes.core.env import Limits, ProcessEnv
from processes.core.errors import OpenEOError, RequestTimeout
from processes.library.save_result import SaveResult


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


def sync_env(services: Services, user_id: str | None, *, validate_only: bool = False,
             max_pixels: int | None = None) -> ProcessEnv:
    """The environment of a synchronous request: the size limits of ``/result`` — the user's
    (``max_pixels``, from their roles' ``sync_pixels``), else the server's."""
    settings = services.settings
    own = max_pixels is not None and max_pixels != settings.sync_max_pixels
    limits = Limits(max_pixels=max_pixels if max_pixels is not None else settings.sync_max_pixels,
                    scope="synchronous processing for your account (sync_pixels of TERRACUBE_LIMITS)" if own
                    else "synchronous processing (TERRACUBE_SYNC_MAX_PIXELS)",
                    way_out="A batch job may load more.")
    return process_env(services, user_id, limits=limits, validate_only=validate_only)


def validate(services: Services, body: Any, user_id: str | None, max_pixels: int | None = None
             ) -> list[dict[str, str]]:
    """Errors of a process graph as ``[{"code", "message"}]`` (empty when valid); computes nothing."""
    limits = sync_env(services, user_id, max_pixels=max_pixels).limits
    try:
        check(services, body, user_id, "synchronous", limits=limits)
    except OpenEOError as err:
        return [{"code": err.code, "message": err.message}]
    return []


def run_sync(services: Services, body: Any, user_id: str, max_pixels: int | None = None) -> SyncResult:
    """Evaluate and compute (``max_pixels``: the user's limit, see :func:`sync_env`). A file result
    lies in its own temporary folder: call ``cleanup()``."""
    value = evaluate(services, body, sync_env(services, user_id, max_pixels=max_pixels), "synchronous")
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
