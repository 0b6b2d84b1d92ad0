"""Batch jobs: the job store (source of truth), the runner, one job's run, its folder and its results.
May import back-end services and ``processes``; never ``backend.api`` or ``backend.app``."""
