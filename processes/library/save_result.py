"""``save_result``: the point where a lazy result meets an output format.

``save_result`` checks the format and its options and returns a :class:`SaveResult`; it does not
write. Whoever runs the graph (the ``/result`` view, the batch job runner, the tile service) decides
where the file goes and then calls :meth:`SaveResult.write`, which is where Dask computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processes.core.errors import parameter_invalid
from processes.formats import OutputFormat, get_output_format


@dataclass(frozen=True)
class SaveResult:
    """A result to be written in a format (the value of a ``save_result`` node)."""

    data: Any
    format: OutputFormat
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        return self.format.media_type

    @property
    def filename(self) -> str:
        return f"result.{self.format.extension}"

    def write(self, target: Path) -> None:
        self.format.write(self.data, target, self.options)


def save_result(data: Any, format: str, options: Mapping[str, Any] | None = None) -> SaveResult:
    if not isinstance(format, str):
        raise parameter_invalid("save_result", "format", "expected the name of an output format, e.g. 'GTiff'.")
    output_format = get_output_format(format)
    return SaveResult(data, output_format, output_format.check(data, dict(options or {})))


PROCESSES = {"save_result": save_result}
