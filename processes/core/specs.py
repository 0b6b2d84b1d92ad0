"""openEO process specifications (JSON), read as data.

The official specs live in ``processes/specs/openeo-processes/`` (the openeo-processes revision
whose test cases the official test suite runs; see the README there for why they are kept in the
repository). Our own additions and corrections live in ``processes/specs/*.json`` and take
precedence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

ProcessSpec = Mapping[str, Any]

_OWN_SPECS = Path(__file__).parent.parent / "specs"


def _official_spec_dirs() -> list[Path]:
    base = _OWN_SPECS / "openeo-processes"
    return [base / "proposals", base]  # stable specs override proposals of the same id


@cache
def all_specs() -> Mapping[str, ProcessSpec]:
    """Every known process spec by id: official (stable over proposals), then our own."""
    specs: dict[str, ProcessSpec] = {}
    for folder in [*_official_spec_dirs(), _OWN_SPECS]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            spec = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(spec, dict) and "id" in spec and "parameters" in spec:
                specs[spec["id"]] = spec
    return specs


def get_spec(process_id: str) -> ProcessSpec | None:
    return all_specs().get(process_id)
