"""The process registry: openEO process id → implementation + spec.

The table itself is built in :mod:`processes.process_table` from an explicit list of modules; here
live the types: :class:`Process` and :class:`ProcessRegistry`, which refuses an id registered twice.

Implementations are plain functions whose keyword parameters are the spec's parameter names.
Child processes arrive as :class:`processes.core.graph.Callback` objects. A function that needs the
evaluation environment (catalog, user, limits) declares a keyword-only parameter ``env``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from processes.core import specs
from processes.core.errors import ProcessUnsupported


@dataclass(frozen=True)
class Process:
    """One implemented openEO process."""

    id: str
    """The openEO process id, e.g. ``"sum"``."""
    implementation: Callable[..., Any]
    """The function implementing it; keyword parameters are the spec's parameter names."""
    spec: Mapping[str, Any]
    """The openEO JSON process description served at ``/processes``."""
    needs_env: bool = field(default=False)
    """Whether the implementation takes the keyword-only ``env`` argument."""

    @property
    def parameter_names(self) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", [])]

    @property
    def required_parameters(self) -> list[str]:
        return [
            p["name"]
            for p in self.spec.get("parameters", [])
            if not p.get("optional", False) and "default" not in p
        ]


class ProcessRegistry(Mapping[str, Process]):
    """Read-only mapping of process id to :class:`Process`; refuses silent overwrites."""

    def __init__(self) -> None:
        self._processes: dict[str, Process] = {}

    def add(self, process_id: str, implementation: Callable[..., Any], spec: Mapping[str, Any] | None = None) -> None:
        if process_id in self._processes:
            raise ValueError(f"process {process_id!r} is registered twice")
        spec = spec if spec is not None else specs.get_spec(process_id)
        if spec is None:
            raise ValueError(
                f"process {process_id!r} has no spec: add processes/specs/{process_id}.json or use an official id"
            )
        needs_env = "env" in inspect.signature(implementation).parameters
        self._processes[process_id] = Process(process_id, implementation, spec, needs_env)

    def __getitem__(self, process_id: str) -> Process:
        try:
            return self._processes[process_id]
        except KeyError:
            raise ProcessUnsupported(
                f"Process with identifier '{process_id}' is not available in namespace 'backend'. "
                "GET /processes lists the processes this back-end offers."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._processes))

    def __len__(self) -> int:
        return len(self._processes)

    def __contains__(self, process_id: object) -> bool:
        return process_id in self._processes
