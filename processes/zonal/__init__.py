"""The zonal statistics engine of ``aggregate_spatial``: membership per window, coverage weights, reduction.
May import ``processes.core`` and ``processes.model``."""
