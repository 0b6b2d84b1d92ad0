"""Loading vector data: ``load_geojson``, ``load_url`` and ``load_uploaded_files``.

Each gives a vector cube (:mod:`processes.model.vector_cube`): inline GeoJSON, or a GeoJSON,
GeoParquet, GeoPackage or FlatGeobuf file downloaded from an http(s) URL or read from the user's
workspace.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import xarray as xr
import xvec  # noqa: F401  (registers the .xvec accessor)

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError, parameter_invalid, process_error
from processes.model.geometry import is_geojson
from processes.model.vector_cube import (
    PROPERTIES_DIM,
    Features,
    features_from_geojson,
    features_of,
    property_values,
    vector_cube,
)


def load_geojson(data: Any, properties: list[str] | None = None) -> xr.DataArray:
    if not is_geojson(data):
        raise parameter_invalid("load_geojson", "data", "expected a GeoJSON object (Feature, FeatureCollection or "
                                "a geometry).")
    features = features_from_geojson(data, "load_geojson", "data", collections=False)
    return _loaded_cube(features, list(properties or []))


def _loaded_cube(features: Features, wanted: list[str]) -> xr.DataArray:
    if not wanted:
        return vector_cube(features)
    labels, values = property_values(features, wanted)
    return vector_cube(features, values, {PROPERTIES_DIM: ("other", labels)})


INPUT_FORMATS = {
    "GeoJSON": {"title": "GeoJSON", "gis_data_types": ["vector"], "parameters": {}},
    "Parquet": {"title": "GeoParquet", "gis_data_types": ["vector"], "parameters": {}},
    "GPKG": {"title": "OGC GeoPackage", "gis_data_types": ["vector"], "parameters": {
        "layer": {"type": ["string", "null"], "description": "The layer to read (default: the first).",
                  "default": None}}},
    "FlatGeobuf": {"title": "FlatGeobuf", "gis_data_types": ["vector"], "parameters": {}},
}
"""What ``load_url`` reads (the ``input`` part of ``GET /file_formats``)."""
_FORMAT_ALIASES = {"geoparquet": "parquet", "fgb": "flatgeobuf", "geopackage": "gpkg", "json": "geojson"}
MAX_DOWNLOAD_BYTES = 500 * 2**20


def _download(url: str, target: Path) -> None:
    import requests

    try:
        with requests.get(url, timeout=60, stream=True) as response:
            response.raise_for_status()
            size = 0
            with target.open("wb") as out:
                for chunk in response.iter_content(2**20):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise parameter_invalid("load_url", "url", f"the file at '{url}' is larger than "
                                                f"{MAX_DOWNLOAD_BYTES // 2**20} MiB.")
                    out.write(chunk)
    except requests.RequestException as exc:
        raise parameter_invalid("load_url", "url", f"cannot download '{url}': {exc}") from None


def _input_format(format: Any, options: Mapping[str, Any] | None, process: str) -> tuple[str, dict[str, Any]]:
    """The canonical lower-case key of an input format and its checked options."""
    known = {name.lower(): name for name in INPUT_FORMATS}
    key = _FORMAT_ALIASES.get(str(format).lower(), str(format).lower())
    if key not in known:
        raise parameter_invalid(process, "format", f"'{format}' is not an input format of this back-end; "
                                f"use one of {', '.join(INPUT_FORMATS)} (GET /file_formats lists them).")
    options = dict(options or {})
    allowed = INPUT_FORMATS[known[key]]["parameters"]
    unknown = [o for o in options if o not in allowed]
    if unknown:
        raise parameter_invalid(process, "options", f"format {known[key]} has no option {', '.join(unknown)}; "
                                f"it has {', '.join(allowed) or 'none'}.")
    return key, options


_DRIVERS = {"geojson": ("GeoJSON", "geojson"), "gpkg": ("GPKG", "gpkg"), "flatgeobuf": ("FlatGeobuf", "fgb"),
            "parquet": ("Parquet", "parquet")}


def _read_vector_file(path: Path, key: str, options: Mapping[str, Any], what: str) -> gpd.GeoDataFrame:
    driver = _DRIVERS[key][0]
    try:
        if key == "parquet":
            return gpd.read_parquet(path)
        found = pyogrio.read_info(path, **options).get("driver")
        if found != driver:
            raise ValueError(f"the file is {found or 'of an unknown format'}")
        return gpd.read_file(path, engine="pyogrio", **options)
    except Exception as exc:  # pyogrio/arrow errors for files that aren't in this format
        raise process_error("FormatUnsuitable", f"{what} can't be read as {driver}: "
                            f"{type(exc).__name__}: {exc}") from None


def load_url(url: str, format: str, options: Mapping[str, Any] | None = None, *, env: ProcessEnv) -> xr.DataArray:
    """Vector data over HTTP(S) as a vector cube. Local paths are refused: they would read server files."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise parameter_invalid("load_url", "url", f"'{url}' is not an http(s) URL; load_url reads files over HTTP(S).")
    key, options = _input_format(format, options, "load_url")
    with tempfile.TemporaryDirectory(dir=env.work_dir) as folder:
        path = Path(folder) / f"download.{_DRIVERS[key][1]}"
        _download(url, path)
        frame = _read_vector_file(path, key, options, f"The file at '{url}'")
    return vector_cube(features_of(frame, "load_url", "url"))


def load_uploaded_files(paths: Any, format: str, options: Mapping[str, Any] | None = None, *,
                        env: ProcessEnv) -> xr.DataArray:
    """Vector files of the user's workspace (``/files``) as one vector cube, features in file order."""
    key, options = _input_format(format, options, "load_uploaded_files")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise parameter_invalid("load_uploaded_files", "paths", "expected a list of file paths of your workspace.")
    if env.user_file is None:
        raise process_error("FileNotFound", "This request has no user workspace to read files from.")
    frames = []
    for path in paths:
        # the workspace is the root: "/a/b.geojson", "./a/b.geojson" and "a/b.geojson" are the same file
        try:
            local = env.user_file(path.lstrip("/").removeprefix("./"))
        except OpenEOError as err:  # the spec: a path outside the workspace is FileNotFound
            if err.code != "FilePathInvalid":
                raise
            raise process_error("FileNotFound", f"File '{path}' does not exist in your workspace: {err.message}") from None
        frame = _read_vector_file(local, key, options, f"The file '{path}'")
        frames.append(frame)
    crs = frames[0].crs  # later files are reprojected to the first file's CRS
    frame = gpd.GeoDataFrame(pd.concat([f.to_crs(crs) if f.crs != crs else f for f in frames], ignore_index=True),
                             crs=crs)
    return vector_cube(features_of(frame, "load_uploaded_files", "paths"))



PROCESSES = {
    "load_geojson": load_geojson,
    "load_url": load_url,
    "load_uploaded_files": load_uploaded_files,
}
