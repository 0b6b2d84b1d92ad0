"""UDF code before it runs: the runtimes offered, fetching code from a URL, checks without running it."""

from __future__ import annotations

import ast
import platform
from dataclasses import dataclass
from importlib import metadata

from udf.entrypoints import ENTRY_POINTS, UDF_FILENAME, syntax_error_message
from udf.pool import UdfError

RUNTIME = "Python"
LIBRARIES = ("numpy", "xarray", "pandas", "scipy", "openeo")
MAX_CODE_BYTES = 1 << 20
FETCH_TIMEOUT_SECONDS = 20


def python_version() -> str:
    """The runtime version UDFs run with: the server's own interpreter, ``major.minor``."""
    return ".".join(platform.python_version_tuple()[:2])


def runtimes_document() -> dict:
    """``GET /udf_runtimes``: the Python runtime, its one version and the libraries installed."""
    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = {"version": metadata.version(name)}
        except metadata.PackageNotFoundError:
            continue
    version = python_version()
    return {
        RUNTIME: {
            "title": f"Python {version}",
            "description": "Python UDFs with the openeo.udf API (apply_datacube, apply_timeseries, apply_udf_data, "
            "apply_metadata), run in confined worker processes with memory, CPU and time limits. "
            "No network access; the file system is read-only except a private temporary folder.",
            "type": "language",
            "default": version,
            "versions": {version: {"libraries": libraries}},
            "links": [{"rel": "about", "href": "https://open-eo.github.io/openeo-python-client/udf.html",
                       "title": "openEO Python UDFs"}],
        }
    }


def check_runtime(runtime: object, version: object) -> str:
    """The version to use; ``UdfError`` kind ``runtime``/``version`` naming what exists."""
    if not isinstance(runtime, str) or runtime.lower() != RUNTIME.lower():
        raise UdfError("runtime", f"The UDF runtime '{runtime}' is not supported; this back-end offers "
                                  f"'{RUNTIME}' (GET /udf_runtimes).")
    available = python_version()
    if version is None:
        return available
    if not isinstance(version, str) or not (version == available or version == platform.python_version()
                                            or version == available.split(".")[0]):
        raise UdfError("version", f"Version '{version}' of the UDF runtime '{RUNTIME}' is not supported; "
                                  f"available: {available} (the default).")
    return available


def fetch_code(url: str) -> str:
    """The UDF code at an http(s) URL (at most 1 MiB, 20 s)."""
    import requests

    try:
        with requests.get(url, timeout=FETCH_TIMEOUT_SECONDS, stream=True) as response:
            response.raise_for_status()
            body = response.raw.read(MAX_CODE_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise UdfError("fetch", f"The UDF code could not be fetched from {url}: {exc}") from None
    if len(body) > MAX_CODE_BYTES:
        raise UdfError("fetch", f"The UDF code at {url} is larger than {MAX_CODE_BYTES} bytes.")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UdfError("fetch", f"The UDF code at {url} is not UTF-8 text.") from None


@dataclass(frozen=True)
class UdfCode:
    """Checked UDF source: it compiles, and these top-level functions are defined."""

    source: str
    functions: frozenset[str]

    @property
    def entry_point(self) -> str | None:
        return next((name for name in ENTRY_POINTS if name in self.functions), None)


def check_code(source: str) -> UdfCode:
    """Compile (never run) the code; a syntax error is a ``UdfError`` of kind ``syntax``."""
    if len(source.encode()) > MAX_CODE_BYTES:
        raise UdfError("syntax", f"The UDF code is larger than {MAX_CODE_BYTES} bytes.")
    try:
        tree = ast.parse(source, filename=UDF_FILENAME)
        compile(tree, UDF_FILENAME, "exec")
    except SyntaxError as exc:
        raise UdfError("syntax", syntax_error_message(exc)) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise UdfError("syntax", f"The UDF code cannot be compiled: {exc}") from None
    functions = frozenset(
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    )
    return UdfCode(source, functions)
