"""The table of output formats: one entry per writer module, names matched case-insensitively."""


from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from processes.core.errors import FormatUnsupported
from processes.formats import animation, gtiff, image, json, netcdf, vector  # the writer modules
from processes.formats.output_format import OutputFormat


def _registry(*formats: OutputFormat) -> dict[str, OutputFormat]:
    table: dict[str, OutputFormat] = {}
    for fmt in formats:
        key = fmt.name.lower()
        if key in table:
            raise ValueError(f"output format {fmt.name!r} is registered twice (as {table[key].name!r} first)")
        table[key] = fmt
    return table


_FORMATS = _registry(gtiff.FORMAT, netcdf.FORMAT, json.FORMAT, vector.CSV, vector.GEOJSON, vector.PARQUET,
                     image.PNG, image.JPEG, animation.GIF, animation.MP4)

# Names other openEO back-ends and GDAL use for the same formats, as /file_formats lists them; every
# name that is accepted is listed, so clients that check names against /file_formats accept them too.
ALIASES = {"GeoTIFF": "GTiff", "COG": "GTiff", "GeoParquet": "Parquet"}
_ALIASES = {alias.lower(): target.lower() for alias, target in ALIASES.items()}
if set(_ALIASES) & set(_FORMATS):
    raise ValueError(f"output format aliases {sorted(set(_ALIASES) & set(_FORMATS))} hide registered formats")


def output_formats() -> Mapping[str, OutputFormat]:
    """All output formats, by canonical name (``{"GTiff": …, "netCDF": …}``)."""
    return MappingProxyType({fmt.name: fmt for fmt in _FORMATS.values()})


def get_output_format(name: str) -> OutputFormat:
    """The output format called ``name`` (any case, or a common alias such as ``GeoTIFF``)."""
    key = str(name).lower()
    fmt = _FORMATS.get(_ALIASES.get(key, key))
    if fmt is None:
        names = ", ".join(fmt.name for fmt in _FORMATS.values())
        raise FormatUnsupported(
            f"Output format '{name}' is not supported; the supported output formats are: {names} "
            "(GET /file_formats describes them)."
        )
    return fmt


def file_formats_document(input_formats: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The body of ``GET /file_formats``: our output formats, and the input formats given by the caller."""
    return {
        "input": dict(input_formats or {}),
        "output": {
            **{fmt.name: fmt.document() for fmt in _FORMATS.values()},
            **{alias: {**_FORMATS[target.lower()].document(),
                       "title": f"{_FORMATS[target.lower()].title} (another name for {target})"}
               for alias, target in ALIASES.items()},
        },
    }
