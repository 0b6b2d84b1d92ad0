"""Evaluating a process graph for the back-end: one builder of the environment for every use.

``/result``, ``/validation``, a job's estimate, a batch job and (next) a map tile all evaluate a
graph the same way: :func:`process_env` builds the :class:`processes.core.env.ProcessEnv` from the
services and the run's context (who, which mode, where files go, which limits), and
:func:`evaluate` parses and evaluates the graph lazily, with the run's processing parameters over
the defaults its process declares. Nothing is computed here; writers compute.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from backend.services import Services
from backend.workspace import Workspace
from processes.core import processing_parameters
from processes.core.env import Limits, ProcessEnv, log_to_python_logging
from processes.core.graph import Evaluator, ProcessGraph
from processes.core.processing_parameters import ProcessingOptions

Mode = Literal["synchronous", "job"]


def process_document(body: Any) -> Any:
    """The process (``{"process_graph", …}``) of a request body; the body itself if it is one."""
    process = body.get("process") if isinstance(body, dict) else None
    return process if process is not None else body


def job_limits(services: Services) -> Limits:
    """The limits of a batch job (and of its estimate): what one job may load."""
    return Limits(max_pixels=services.settings.job_max_pixels, scope="a batch job (TERRACUBE_JOB_MAX_PIXELS)")


def process_env(
    services: Services,
    user_id: str | None,
    *,
    limits: Limits | None = None,
    validate_only: bool = False,
    work_dir: Path | None = None,
    log: Callable[..., None] | None = None,
) -> ProcessEnv:
    """The environment of one evaluation: catalog, the user's stored processes and workspace, limits
    (a batch job's unless given)."""
    return ProcessEnv(
        collections=services.catalog,
        user_id=user_id,
        limits=limits if limits is not None else job_limits(services),
        validate_only=validate_only,
        user_processes=functools.partial(services.udps.lookup, user_id),
        user_file=Workspace(services.settings.workspaces_dir, user_id).resolve if user_id else None,
        work_dir=work_dir,
        log=log if log is not None else log_to_python_logging,
    )


def evaluate(services: Services, body: Any, env: ProcessEnv, mode: Mode,
             parameters: Mapping[str, Any] | None = None, graph: ProcessGraph | None = None) -> Any:
    """Parse and evaluate the graph of a request body (or a process) lazily; nothing is computed.

    The processing parameters are ``parameters`` if given, else read off ``body`` (top level or
    ``job_options``), over the defaults its process declares (``default_job_parameters`` …).
    ``graph`` is the process's graph where the caller has parsed it already (a map tile's).
    """
    given = processing_parameters.from_request(body, mode) if parameters is None else dict(parameters)
    env = dataclasses.replace(env, options=ProcessingOptions(mode, given))
    return Evaluator(services.registry, env).evaluate_process(process_document(body), graph)


def check(services: Services, body: Any, user_id: str | None, mode: Mode, *,
          parameters: Mapping[str, Any] | None = None, limits: Limits | None = None) -> None:
    """Evaluate without computing (``validate_only``): raises the openEO error a run would raise
    first — an unknown collection, band, process or argument, an extent over the limits."""
    evaluate(services, body, process_env(services, user_id, limits=limits, validate_only=True), mode, parameters)
