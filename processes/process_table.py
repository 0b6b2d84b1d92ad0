"""The table of every process this back-end offers: openEO id → implementation + spec.

Built in one place from an explicit list of modules; each module declares a plain dict
``PROCESSES = {"openeo_id": function}``. Nothing registers itself at import time, nothing is
discovered by introspection of module members, and an id registered twice is an error.
"""

from __future__ import annotations

from types import ModuleType

from processes.core.registry import ProcessRegistry


def _modules() -> list[ModuleType]:
    # The explicit list of modules that implement processes. Add new modules here.
    from processes.data import load, vector_files
    from processes.library import (
        arrays,
        datacube,
        dates,
        dimensions,
        inspection,
        logic,
        masking,
        math,
        merge,
        neighborhood,
        reducers,
        resampling,
        run_udf,
        save_result,
        temporal_aggregation,
        texts,
        vector,
    )

    return [
        math, logic, reducers, arrays, texts, dates, load, vector_files, datacube, dimensions, merge, masking,
        neighborhood, resampling, temporal_aggregation, vector, run_udf, inspection, save_result,
    ]


def build_registry() -> ProcessRegistry:
    registry = ProcessRegistry()
    for module in _modules():
        for process_id, implementation in module.PROCESSES.items():
            registry.add(process_id, implementation)
    return registry
