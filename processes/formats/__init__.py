"""Output formats of ``save_result``: an explicit registry of writers (may import ``processes.core``/``model``).

Each format is an :class:`OutputFormat` with the metadata ``GET /file_formats`` serves and a
``write(value, target, options)`` that writes exactly one file. The registry is a plain table
built below from explicit imports; it refuses two formats with the same name. Names are matched
case-insensitively, as openEO asks (clients send ``GTiff``, ``GTIFF`` or ``gtiff``); an unknown name
is an error listing the formats that exist.
"""

from __future__ import annotations

from processes.formats.output_format import OutputFormat, cube_name, empty_cube, unsuitable
from processes.formats.registry import file_formats_document, get_output_format, output_formats

__all__ = [
    "OutputFormat",
    "cube_name",
    "empty_cube",
    "file_formats_document",
    "get_output_format",
    "output_formats",
    "unsuitable",
]
