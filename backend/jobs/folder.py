"""The layout of one batch job's folder, owned in one place.

::

    <data dir>/jobs/<job id>/
        process.log      what the job's process printed (read when it dies without a word)
        run-<n>/         the files of attempt n while it runs
        results/         the files of the attempt that finished, and their STAC description

Each attempt writes into its own ``run-<n>`` folder, moved into place as ``results`` only when it
succeeded: a run that lost the job (re-queued after a missed heartbeat) never mixes its files with
another run's, and readers never see half-written results.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from backend.jobs.results import STAC_FILE
from backend.settings import Settings


@dataclass(frozen=True)
class JobFolder:
    root: Path
    """``<data dir>/jobs/<job id>``."""

    @classmethod
    def of(cls, settings: Settings, job_id: str) -> JobFolder:
        return cls(settings.jobs_dir / job_id)

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def process_log(self) -> Path:
        return self.root / "process.log"

    def scratch(self, attempt: str | None) -> Path:
        """The folder of one attempt (``attempt`` as the job store numbers it: ``<runner>#<n>``)."""
        return self.root / f"run-{(attempt or 'x').rsplit('#', 1)[-1]}"

    def publish(self, scratch: Path) -> None:
        """Make an attempt's files the job's results, replacing earlier ones."""
        shutil.rmtree(self.results, ignore_errors=True)
        scratch.rename(self.results)

    def result_file(self, name: str) -> Path | None:
        """A result file by its name, or None: only plain files directly inside ``results``
        (no path segments, no links out of it, not the STAC document)."""
        if not name or name != Path(name).name or name in (".", "..", STAC_FILE):
            return None
        path = self.results / name
        try:
            if path.is_symlink() or not path.is_file():
                return None
        except OSError:
            return None
        return path

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
