"""The state of the back-end's parts, for ``GET /health`` (load balancers, the federation's aggregator).

Parts and how each is checked:

- ``job_store``: a ``SELECT 1`` on its database;
- ``job_runner``: some runner's heartbeat in the store (:mod:`backend.jobs.beacon`) is younger than
  ``TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS``; whether the runner is embedded or runs as its own
  processes (``terracube worker``) does not matter: without one, batch jobs wait forever;
- ``dask``: the scheduler at ``TERRACUBE_DASK_SCHEDULER`` answers; without one, each runner starts its
  own LocalCluster, which lives and dies with the runner;
- ``stac``: the static catalogs' files are still there, and each STAC API collection answers its URL
  (checked at most once a minute).

The answer names parts and collection ids only: never a path, URL, address or an exception's text
(which may hold credentials); the causes go to the server log. Reports are cached for a few seconds,
so polling ``/health`` (it needs no login) cannot load the store or the sources.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from backend.jobs.beacon import RunnerBeacons
from backend.jobs.runner import probe_scheduler
from backend.jobs.store import utcnow
from backend.services import Services
from processes.data.stac_sources import StacApiCollection, StaticCollection

log = logging.getLogger(__name__)

REPORT_SECONDS = 5.0
"""How long one report is served again."""
STAC_API_SECONDS = 60.0
"""How long the answer of a STAC API collection counts."""
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class Part:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)
    """What an operator may read (counts, ages, collection ids; nothing secret)."""
    why: str = ""
    """For a part that is down: what is wrong and what to do, in a sentence."""

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok" if self.ok else "down", **self.detail}
        if self.why:
            body["message"] = self.why
        return body


@dataclass(frozen=True)
class Report:
    parts: dict[str, Part]

    @property
    def ok(self) -> bool:
        return all(part.ok for part in self.parts.values())

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok" if self.ok else "down"}
        down = [name for name, part in self.parts.items() if not part.ok]
        if down:
            body["down"] = down
            body["message"] = "Down: " + "; ".join(f"{name} ({self.parts[name].why})" for name in down)
        body["parts"] = {name: part.document() for name, part in self.parts.items()}
        return body


class HealthChecks:
    """The checks of one API process, with their caches."""

    def __init__(self, services: Services):
        self.services = services
        self._lock = threading.Lock()
        self._report: tuple[float, Report] | None = None
        self._stac_api: dict[str, tuple[float, bool]] = {}

    def report(self) -> Report:
        with self._lock:
            if self._report is not None and time.monotonic() - self._report[0] < REPORT_SECONDS:
                return self._report[1]
            store = self._job_store()
            report = Report({
                "job_store": store,
                "job_runner": self._job_runner() if store.ok else Part(
                    False, why="unknown: the job store does not answer"),
                "dask": self._dask(),
                "stac": self._stac(),
            })
            self._report = (time.monotonic(), report)
            return report

    def _job_store(self) -> Part:
        try:
            with self.services.jobs.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            log.error("health: the job store does not answer (%s)", type(exc).__name__)
            return Part(False, why="the job store's database does not answer; check TERRACUBE_DATABASE_URL "
                                   "and that the database is running")
        return Part(True)

    def _job_runner(self) -> Part:
        timeout = dt.timedelta(seconds=self.services.settings.job_heartbeat_timeout_seconds)
        try:
            state = RunnerBeacons(self.services.jobs.engine).state(timeout)
        except Exception as exc:
            log.error("health: cannot read the job runners' heartbeats (%s)", type(exc).__name__)
            return Part(False, why="the job runners' heartbeats cannot be read from the job store")
        detail: dict[str, Any] = {"runners": state.alive}
        if state.latest is not None:
            detail["last_heartbeat_seconds_ago"] = round((utcnow() - state.latest).total_seconds())
        if state.alive:
            return Part(True, detail)
        embedded = self.services.settings.embedded_runner
        return Part(False, detail, why=(
            f"no job runner has reported in the last {int(timeout.total_seconds())} s, so batch jobs stay queued; "
            + ("the server's embedded runner is starting or has died (see the server log)" if embedded else
               "start one with `terracube worker` (TERRACUBE_EMBEDDED_RUNNER is false)")))

    def _dask(self) -> Part:
        address = self.services.settings.dask_scheduler
        if not address:
            return Part(True, {"cluster": "local", "note": "each job runner starts its own LocalCluster"})
        workers = probe_scheduler(address, timeout=PROBE_TIMEOUT)
        if workers is None:
            log.error("health: the Dask scheduler (TERRACUBE_DASK_SCHEDULER) does not answer")
            return Part(False, {"cluster": "external"},
                        why="the Dask scheduler of TERRACUBE_DASK_SCHEDULER does not answer, so no job can start")
        return Part(True, {"cluster": "external", "workers": workers})

    def _stac(self) -> Part:
        catalog = self.services.catalog
        unreadable = []
        ids = catalog.ids()
        for collection_id in ids:
            handle = catalog.get(collection_id)
            if isinstance(handle, StaticCollection):
                readable = Path(handle.source).is_file()
            elif isinstance(handle, StacApiCollection):
                readable = self._stac_api_answers(handle.source)
            else:
                readable = True
            if not readable:
                unreadable.append(collection_id)
        if unreadable:
            log.error("health: STAC sources of the collections %s are unreadable", ", ".join(unreadable))
            return Part(False, {"collections": len(ids), "unreadable": unreadable},
                        why=f"the STAC sources of {', '.join(unreadable)} cannot be read; check TERRACUBE_STAC")
        return Part(True, {"collections": len(ids)})

    def _stac_api_answers(self, url: str) -> bool:
        seen = self._stac_api.get(url)
        if seen is not None and time.monotonic() - seen[0] < STAC_API_SECONDS:
            return seen[1]
        try:
            answers = requests.get(url, timeout=PROBE_TIMEOUT).status_code == 200
        except requests.RequestException:
            answers = False
        self._stac_api[url] = (time.monotonic(), answers)
        return answers
