"""Processing parameters: back-end specific options of one processing request.

openEO's Processing Parameters extension (https://api.openeo.org/extensions/processing-parameters/0.1.0):
``GET /processing_parameters`` lists them per processing mode; a request sets one as a top-level
property of ``POST /result`` or ``POST /jobs`` (the Python client: ``additional={...}``; inside
``job_options`` is read too, as other back-ends' users write it); a user-defined process may carry
defaults per mode (``default_synchronous_parameters``, ``default_job_parameters``; the Python
client's ``build_process_dict`` writes ``default_synchronous_options``, ``default_job_options``).

The value that applies is the request's, else that of the innermost user-defined process giving
one, else the default listed here. Values are checked against the parameter's schema; unknown
names in a user-defined process are ignored, as the extension asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from processes.core.errors import BadRequest

MODES = ("synchronous", "job", "service")
"""The processing modes: ``POST /result``, ``POST /jobs``, ``POST /services``."""

_UDP_DEFAULT_KEYS = {
    "synchronous": ("default_synchronous_parameters", "default_synchronous_options"),
    "job": ("default_job_parameters", "default_job_options"),
    "service": ("default_service_parameters", "default_service_options"),
}


@dataclass(frozen=True)
class ProcessingParameter:
    """One back-end specific option of a processing request."""

    name: str
    """The property name in the request body."""
    description: str
    """What it does (CommonMark), shown by clients such as the web editor."""
    schema: Mapping[str, Any]
    """JSON Schema of its values."""
    default: Any
    """The value when neither the request nor a user-defined process gives one."""
    modes: tuple[str, ...] = field(default=("synchronous", "job"))
    """The processing modes it applies to (a subset of :data:`MODES`)."""

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "optional": True,
                "default": self.default, "schema": dict(self.schema)}

    def checked(self, value: Any, source: str) -> Any:
        try:
            jsonschema.validate(value, self.schema)
        except jsonschema.ValidationError as exc:
            raise BadRequest(
                f"The processing parameter '{self.name}' given {source} is invalid: {exc.message}. "
                "GET /processing_parameters describes it."
            ) from None
        return value


AGGREGATE_SPATIAL_PIXELS = ProcessingParameter(
    name="aggregate_spatial_pixels",
    description=(
        "Which pixels of a polygon `aggregate_spatial` reduces, and how much each counts.\n\n"
        "* `centre` (openEO's rule): the pixels whose centre lies in the polygon, each fully.\n"
        "* `coverage`: every pixel the polygon overlaps, weighted by the exact fraction of the pixel's "
        "area inside the polygon: mean, sum, count, sd, variance, median and quantiles are weighted "
        "(count is the covered area in pixels), min and max take every overlapped pixel. Small "
        "polygons on coarse grids get exact area-weighted values. Works with the reducers mean, sum, "
        "count, min, max, median, quantiles (one probability), sd and variance.\n\n"
        "Points and lines take the pixels they touch, each fully, either way."
    ),
    schema={"type": "string", "enum": ["centre", "coverage"]},
    default="centre",
)

PARAMETERS: dict[str, ProcessingParameter] = {p.name: p for p in (AGGREGATE_SPATIAL_PIXELS,)}
"""Every processing parameter this back-end offers, by name."""


def parameters_document() -> dict[str, list[dict[str, Any]]]:
    """The body of ``GET /processing_parameters``."""
    listed = {mode: [p.document() for p in PARAMETERS.values() if mode in p.modes] for mode in MODES}
    return {"create_synchronous_parameters": listed["synchronous"], "create_job_parameters": listed["job"],
            "create_service_parameters": listed["service"]}


def from_request(body: Any, mode: str) -> dict[str, Any]:
    """The processing parameters a request body sets (top level, or inside ``job_options``), checked."""
    if not isinstance(body, Mapping):
        return {}
    given: dict[str, Any] = {}
    options = body.get("job_options")
    if isinstance(options, Mapping):
        given.update({k: v for k, v in options.items() if k in PARAMETERS})
    given.update({k: v for k, v in body.items() if k in PARAMETERS})
    for name, value in given.items():
        if mode not in PARAMETERS[name].modes:
            raise BadRequest(f"The processing parameter '{name}' does not apply to {mode} processing.")
        PARAMETERS[name].checked(value, "in the request")
    return given


def udp_defaults(definition: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """The defaults a user-defined process gives for ``mode`` (unknown names ignored)."""
    found: dict[str, Any] = {}
    for key in reversed(_UDP_DEFAULT_KEYS[mode]):  # the extension's spelling wins over the client's
        values = definition.get(key)
        if isinstance(values, Mapping):
            found.update({k: v for k, v in values.items() if k in PARAMETERS and mode in PARAMETERS[k].modes})
    return found


@dataclass(frozen=True)
class ProcessingOptions:
    """The processing parameters in force for one evaluation (or one user-defined process in it)."""

    mode: str = "synchronous"
    """One of :data:`MODES`."""
    given: Mapping[str, Any] = field(default_factory=dict)
    """What the request set (wins over everything)."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Defaults of the enclosing user-defined processes, the innermost winning."""

    def __getitem__(self, name: str) -> Any:
        parameter = PARAMETERS[name]
        if name in self.given:
            return self.given[name]
        if name in self.defaults:
            return parameter.checked(self.defaults[name], "as a default of a user-defined process")
        return parameter.default

    def within(self, definition: Mapping[str, Any]) -> ProcessingOptions:
        """The options inside a user-defined process (its defaults over the enclosing ones)."""
        extra = udp_defaults(definition, self.mode)
        if not extra:
            return self
        return ProcessingOptions(self.mode, self.given, {**self.defaults, **extra})
