"""STAC items as the searches see them: their time interval, footprint and properties, and the source errors.

Shared by the static collections (:mod:`processes.data.stac_sources`) and the STAC API collections
(:mod:`processes.data.stac_api`), which both answer "which items intersect this box, this interval and
pass these property filters?".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, overload

import pystac
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from processes.core.errors import OpenEOError


class StacSourceError(OpenEOError):
    """A configured or requested STAC source cannot be read."""

    code = "StacSourceInvalid"
    status = 400


class StacApiError(OpenEOError):
    """A STAC API failed to answer a search (an error status, a time-out, an unreachable host)."""

    code = "StacApiUnavailable"
    status = 502


def utc(moment: datetime) -> datetime:
    # A time without zone ("2022-06-01") is UTC, as everywhere in openEO; comparing it with the
    # zoned datetimes of items would otherwise raise TypeError.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# A time string always parses (or raises): only None gives None.
@overload
def parse_time(value: str) -> datetime: ...
@overload
def parse_time(value: str | None) -> datetime | None: ...
def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return utc(pystac.utils.str_to_datetime(value))


def item_interval(item: pystac.Item) -> tuple[datetime, datetime]:
    """``(start, end)`` of an item: its datetime twice, or its start/end datetimes."""
    if item.datetime is not None:
        return utc(item.datetime), utc(item.datetime)
    start = parse_time(item.properties.get("start_datetime"))
    end = parse_time(item.properties.get("end_datetime"))
    if start is None or end is None:
        raise StacSourceError(f"STAC item '{item.id}' has neither 'datetime' nor start/end datetimes.")
    return start, end


def footprint(item: pystac.Item) -> BaseGeometry:
    if item.geometry:
        return shape(item.geometry)
    # An item without a geometry may lack a bbox as well (STAC requires one only with a geometry).
    if item.bbox is None:
        raise StacSourceError(f"STAC item '{item.id}' has neither a geometry nor a bbox.")
    return box(*item.bbox)


def matches_properties(item: pystac.Item, properties: Mapping[str, Any] | None) -> bool:
    """Whether the item passes every ``{name: condition(value) -> bool}``."""
    if not properties:
        return True
    for name, condition in properties.items():
        if not condition(item.properties.get(name)):
            return False
    return True
