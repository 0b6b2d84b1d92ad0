"""Batch jobs: the job store (source of truth), the runner that executes queued jobs on Dask, results."""
