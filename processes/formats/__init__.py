"""Output formats of ``save_result``: an explicit registry of writers.

Each format is an :class:`OutputFormat` with the metadata ``GET /file_formats`` serves and a
``write(value, target, options)`` that writes exactly one file. Names are matched
case-insensitively (openEO clients send ``GTiff``, ``GTIFF`` or ``gtiff``); an unknown name is an
error listing the formats that exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processes.errors import FormatArgumentInvalid, FormatUnsupported


@dataclass(frozen=True)
class OutputFormat:
    name: str
    """Canonical name, as listed by ``/file_formats``."""
    title: str
    """Human-readable name."""
    description: str
    """What the format holds and how Terracube writes it."""
    gis_data_types: tuple[str, ...]
    """openEO GIS data types it can hold: ``raster``, ``vector``, ``table``, ``other``."""
    media_type: str
    """Media type of the written file."""
    extension: str
    """File name extension, without the dot."""
    writer: Callable[[Any, Path, Mapping[str, Any]], None]
    """Writes a value to one file."""
    accepts: Callable[[Any], str | None]
    """Why a value cannot be written in this format, or None if it can."""
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """openEO file-format parameters: ``{name: {"type", "description", "default", …}}``."""

    def check(self, value: Any, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options with defaults filled in; raises on an unsuitable value or a bad option."""
        problem = self.accepts(value)
        if problem:
            from processes.errors import process_error

            raise process_error("FormatUnsuitable", f"Data can't be saved as {self.name}: {problem}")
        return self.options(options)

    def options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        lowered = {k.lower(): k for k in self.parameters}
        for key, value in (options or {}).items():
            name = lowered.get(key.lower())
            if name is None:
                raise FormatArgumentInvalid(
                    f"Output format {self.name} has no option '{key}'; its options are: "
                    f"{', '.join(self.parameters) or 'none'}."
                )
            _check_option_type(self.name, name, self.parameters[name], value)
            resolved[name] = value
        for name, schema in self.parameters.items():
            resolved.setdefault(name, schema.get("default"))
        return resolved

    def write(self, value: Any, target: Path, options: Mapping[str, Any]) -> None:
        self.writer(value, target, self.check(value, options))

    def document(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "gis_data_types": list(self.gis_data_types),
            "parameters": {name: dict(schema) for name, schema in self.parameters.items()},
        }


_JSON_TYPES = {"boolean": bool, "integer": int, "number": (int, float), "string": str, "array": list, "object": dict}


def _check_option_type(fmt: str, name: str, schema: Mapping[str, Any], value: Any) -> None:
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    allowed = tuple(t for t in types if t in _JSON_TYPES)
    ok = value is None and "null" in types
    for kind in allowed:
        python_type = _JSON_TYPES[kind]
        if isinstance(value, python_type) and not (kind in ("integer", "number") and isinstance(value, bool)):
            ok = True
    if allowed and not ok:
        raise FormatArgumentInvalid(
            f"Option '{name}' of output format {fmt} must be of type {' or '.join(map(str, types))}, got {value!r}."
        )
    if "enum" in schema and value not in schema["enum"]:
        raise FormatArgumentInvalid(
            f"Option '{name}' of output format {fmt} must be one of {schema['enum']}, got {value!r}."
        )


def _build() -> dict[str, OutputFormat]:
    from processes.formats import gtiff, json, netcdf, vector

    registry: dict[str, OutputFormat] = {}
    for fmt in (gtiff.FORMAT, netcdf.FORMAT, json.FORMAT, vector.CSV, vector.GEOJSON, vector.PARQUET):
        key = fmt.name.lower()
        if key in registry:
            raise ValueError(f"output format {fmt.name!r} is registered twice")
        registry[key] = fmt
    return registry


_REGISTRY: dict[str, OutputFormat] | None = None
# Names other openEO back-ends use for the same formats.
_ALIASES = {"geotiff": "gtiff", "tiff": "gtiff", "nc": "netcdf", "geoparquet": "parquet"}


def output_formats() -> Mapping[str, OutputFormat]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _build()
    return _REGISTRY


def get_output_format(name: str) -> OutputFormat:
    key = name.lower()
    fmt = output_formats().get(_ALIASES.get(key, key))
    if fmt is None:
        names = ", ".join(f.name for f in output_formats().values())
        raise FormatUnsupported(f"Output format '{name}' is not supported; GET /file_formats lists them: {names}.")
    return fmt


def file_formats_document() -> dict[str, Any]:
    """The body of ``GET /file_formats``."""
    return {"input": {}, "output": {fmt.name: fmt.document() for fmt in output_formats().values()}}
