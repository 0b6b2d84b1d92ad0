"""The evaluation environment: everything a process may need besides its arguments.

One :class:`ProcessEnv` is made per evaluation (a ``/result`` request, a batch job, a
``/validation`` call, a map tile). Only the environment differs between those uses; the evaluator
and the processes are the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from processes.core.processing_parameters import ProcessingOptions


class CollectionHandle(Protocol):
    """One loadable collection (a static STAC collection or a STAC API collection)."""

    id: str

    def stac_collection(self) -> Mapping[str, Any]:
        """The collection's STAC document: the one the collection holds (every load reads it), so it is
        read, never changed; copy it to change it."""
        ...

    def iter_items(
        self,
        bbox: tuple[float, float, float, float] | None,
        interval: tuple[str | None, str | None] | None,
        properties: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The items (STAC item dicts, asset hrefs absolute) intersecting ``bbox`` (WGS84 lon/lat) whose
        datetime is in ``[start, end)`` and that pass the ``{name: condition}`` property filters."""
        ...

    def sample(self, count: int) -> list[dict[str, Any]]:
        """The collection's first ``count`` items (for metadata the collection does not declare)."""
        ...


class CollectionSource(Protocol):
    def get(self, collection_id: str) -> CollectionHandle:
        """The collection, or ``CollectionNotFound`` naming the collections that exist."""
        ...


@dataclass(frozen=True)
class Limits:
    """Size limits of one evaluation."""

    max_pixels: int | None = None
    """Most pixels (values) a loaded cube may have; None for no limit (batch jobs)."""
    max_items: int | None = None
    """Most STAC items one load may stack."""
    scope: str = "this request"
    """Who sets the limits, for error messages (e.g. "synchronous processing (TERRACUBE_SYNC_MAX_PIXELS)")."""
    way_out: str = ""
    """What else the user can do when a limit is reached (e.g. "Run it as a batch job to load more.")."""


def log_to_python_logging(level: str, message: str, data: Mapping[str, Any]) -> None:
    """Default sink for user-visible log entries (``inspect``): the server log."""
    logging.getLogger("terracube.user").log(
        getattr(logging, level.upper(), logging.INFO), "%s %s", message, dict(data)
    )


@dataclass(frozen=True)
class ProcessEnv:
    """The environment of one evaluation."""

    collections: CollectionSource
    """Where ``load_collection`` finds collections."""
    user_id: str | None = None
    """The authenticated user, if any."""
    limits: Limits = field(default_factory=Limits)
    """Size limits (sync requests have some, batch jobs none)."""
    work_dir: Path | None = None
    """A private scratch folder for this evaluation."""
    validate_only: bool = False
    """True for ``/validation``: build the lazy result, never compute."""
    user_processes: Callable[[str], Mapping[str, Any] | None] | None = None
    """The requesting user's stored process definitions by id (``/process_graphs``), if any."""
    user_file: Callable[[str], Path] | None = None
    """Resolves a path in the requesting user's workspace (``/files``) to a local file, refusing paths
    outside it (``FilePathInvalid``) and missing files (``FileNotFound``); None where there is no user."""
    node_id: str | None = None
    """The node whose process is being called: errors raised later, while a writer computes (a
    failing UDF block), still name it."""
    loads: list[dict[str, Any]] = field(default_factory=list)
    """What the loading processes stacked (collection, items, values): the basis of job estimates."""
    log: Callable[[str, str, Mapping[str, Any]], None] = log_to_python_logging
    """Where user-visible log entries go: ``log(level, message, data)`` (batch jobs: the job's log)."""
    options: ProcessingOptions = field(default_factory=ProcessingOptions)
    """The processing parameters in force (``options["aggregate_spatial_pixels"]``)."""
    view_resolution: float | None = None
    """The pixel size, in metres on the ground, at which the result will be looked at (a map tile's), or
    None for full resolution. Loads then stack a coarser grid — the coarsest power-of-two multiple of the
    native pixel size still no coarser than this — which COG overviews serve (``processes.data.plan``)."""
