"""``GET /jobs/{id}/estimate``: duration and size of a batch job from what its graph loads.

The graph is evaluated without limits and without reading a pixel; the values it would load give
the duration at the reference machine's speed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from backend.evaluation import evaluate, process_env
from backend.services import Services
from processes.library.save_result import SaveResult

# Synchronous NDVI composites on the 2-core reference machine read 14–42 million values per second
# (demo and Bolzano data); the estimate takes the slow end per core and adds a third for writing.
VALUES_PER_SECOND_PER_CORE = 7e6


def estimate(services: Services, process: Any, user_id: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """An estimate of a batch job from what its graph loads (no pixel is read)."""
    env = process_env(services, user_id, validate_only=True)  # a batch job's limits
    value = evaluate(services, process, env, "job", parameters)
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
