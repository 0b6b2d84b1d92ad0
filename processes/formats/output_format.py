"""The description of one output format: what ``GET /file_formats`` shows and how options are checked.

An :class:`OutputFormat` pairs the openEO metadata of a format (title, GIS data types, parameter
schemas) with the function that writes a value to one file. Options are validated against the
parameter schemas here, once for every format, so writers receive complete, well-typed options
(defaults filled in, names in their canonical spelling).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from processes.core.errors import FormatArgumentInvalid, OpenEOError, process_error

Writer = Callable[[Any, Path, Mapping[str, Any]], None]
Acceptor = Callable[[Any], str | None]


def unsuitable(format_name: str, reason: str) -> OpenEOError:
    """``FormatUnsuitable`` (an exception of ``save_result``): the data can't go into this format."""
    return process_error("FormatUnsuitable", f"Data can't be saved as {format_name}: {reason}")


def empty_cube(format_name: str) -> OpenEOError:
    """``DataCubeEmpty`` (an exception of ``save_result``)."""
    return process_error(
        "DataCubeEmpty",
        f"The data cube is empty (it has no pixels) and {format_name} can't store an empty data cube; "
        "check the spatial and temporal extents and the filters of the process graph.",
    )


# xarray names a DataArray after its Dask array when given no name (``array-<token>``, ``add-<token>``).
_DASK_NAME = re.compile(r"-[0-9a-f]{32}$")


def cube_name(cube: Any, default: str = "data") -> str:
    """The name of a cube's values (e.g. for its only band), or ``default`` if it has none worth showing."""
    name = getattr(cube, "name", None)
    if name is None or _DASK_NAME.search(str(name)):
        return default
    return str(name)


def _accepts_anything(value: Any) -> str | None:
    return None


@dataclass(frozen=True)
class OutputFormat:
    """An output format of ``save_result``."""

    name: str
    """Canonical name, as listed by ``GET /file_formats`` (``GTiff``, ``netCDF``, ``JSON``)."""
    title: str
    """Human-readable name."""
    description: str
    """What the format holds and how Terracube writes it (CommonMark)."""
    gis_data_types: tuple[str, ...]
    """openEO GIS data types it can hold: ``raster``, ``vector``, ``table``, ``other``."""
    media_type: str
    """Media type of the written file."""
    extension: str
    """File name extension, without the dot."""
    writer: Writer
    """Writes a value to exactly one file, given complete options (see :meth:`options`)."""
    accepts: Acceptor = _accepts_anything
    """Why a value can't be written in this format (→ ``FormatUnsuitable``), or None if it can.
    May raise a more specific error itself (e.g. ``DataCubeEmpty``). Must not compute lazy data."""
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """openEO file-format parameters: ``{name: {"type", "description", "default", "enum"?, …}}``."""

    def __post_init__(self) -> None:
        # A frozen dataclass with a plain dict inside would still be mutable through the dict.
        frozen = {name: MappingProxyType(dict(schema)) for name, schema in self.parameters.items()}
        object.__setattr__(self, "parameters", MappingProxyType(frozen))
        object.__setattr__(self, "gis_data_types", tuple(self.gis_data_types))

    def check(self, value: Any, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The options with defaults filled in; raises if the value or an option doesn't fit the format.

        Cheap: called when ``save_result`` is evaluated, before anything is computed.
        """
        problem = self.accepts(value)
        if problem:
            raise unsuitable(self.name, problem)
        return self.options(options or {})

    def options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validated options under their canonical names, with the defaults of the omitted ones."""
        by_lower_name = {name.lower(): name for name in self.parameters}
        resolved: dict[str, Any] = {}
        for key, value in options.items():
            name = by_lower_name.get(str(key).lower())
            if name is None:
                supported = ", ".join(self.parameters) or "none"
                raise FormatArgumentInvalid(
                    f"Output format {self.name} has no option '{key}'; its options are: {supported}."
                )
            resolved[name] = _checked_option(self.name, name, self.parameters[name], value)
        for name, schema in self.parameters.items():
            resolved.setdefault(name, schema.get("default"))
        return resolved

    def write(self, value: Any, target: Path, options: Mapping[str, Any] | None = None) -> None:
        """Write ``value`` to the file ``target`` (this is where lazy data is computed)."""
        self.writer(value, Path(target), self.check(value, options))

    def document(self) -> dict[str, Any]:
        """This format's entry in ``GET /file_formats``."""
        return {
            "title": self.title,
            "description": self.description,
            "gis_data_types": list(self.gis_data_types),
            "parameters": {name: dict(schema) for name, schema in self.parameters.items()},
        }


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "string": str,
    "array": (list, tuple),
    "object": Mapping,
}


def _checked_option(fmt: str, name: str, schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` if it fits the option's schema (enum strings in their canonical case)."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if value is None:
        if "null" in types:
            return None
        raise FormatArgumentInvalid(f"Option '{name}' of output format {fmt} can't be null.")
    known = [t for t in types if t in _JSON_TYPES]
    # bool is an int in Python, but not an integer in JSON
    fits = any(
        isinstance(value, _JSON_TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
        for t in known
    )
    if known and not fits:
        raise FormatArgumentInvalid(
            f"Option '{name}' of output format {fmt} must be of type {' or '.join(map(str, types))}, "
            f"got {value!r} ({type(value).__name__})."
        )
    if "enum" in schema:
        allowed = [v for v in schema["enum"] if v is not None]
        match = next((v for v in allowed if v == value or _same_text(v, value)), None)
        if match is None:
            raise FormatArgumentInvalid(
                f"Option '{name}' of output format {fmt} must be one of {', '.join(map(str, allowed))}; "
                f"got {value!r}."
            )
        value = match
    if "minimum" in schema and value < schema["minimum"]:
        raise FormatArgumentInvalid(
            f"Option '{name}' of output format {fmt} must be at least {schema['minimum']}, got {value!r}."
        )
    if "maximum" in schema and value > schema["maximum"]:
        raise FormatArgumentInvalid(
            f"Option '{name}' of output format {fmt} must be at most {schema['maximum']}, got {value!r}."
        )
    return value


def _same_text(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()
