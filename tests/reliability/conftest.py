"""Reliability suite (``make reliability``): the real server under fuzzing, bad requests, load, memory pressure.

These tests start ``terracube serve`` (gunicorn, real HTTP) over demo data generated into a temporary
folder, like the API tests, but with the limits a hostile client meets: an 8 MiB body limit
(``TERRACUBE_MAX_REQUEST_MB``), four threads per worker. They take minutes and need the
``reliability`` extra (schemathesis), so ``make test`` does not collect this folder: it runs only
when named on the command line (``pytest tests/reliability``, which ``make reliability`` does).
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from backend.devserver import running_server
from tests.conftest import USERS, server_env

HERE = Path(__file__).resolve().parent

MAX_REQUEST_MB = 8
"""The body limit of the reliability server (small, so that a body over it is cheap to send)."""
FAST_SECONDS = 2.0
"""A refused request must be answered within this time."""

COLLECTION = "DEMO_SENTINEL2_L2A"
SMALL_EXTENT = {"west": 601000, "south": 5036000, "east": 602000, "north": 5037000, "crs": 32632}
TWO_WEEKS = ["2023-05-01", "2023-05-15"]
WORLD_METRIC = {"west": -2e7, "south": -1e7, "east": 2e7, "north": 1e7, "crs": 32632}
WORLD_WGS84 = {"west": -180, "south": -90, "east": 180, "north": 90, "crs": 4326}
JUST_OUTSIDE = {"west": 610240, "south": 5034000, "east": 610300, "north": 5035000, "crs": 32632}
"""East of the demo tiles (they end at x = 610240 in EPSG:32632)."""


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect this folder only when the command line names it (or something inside it)."""
    if collection_path == HERE:
        return None
    for arg in config.args:
        target = Path(arg.split("::", 1)[0]).resolve()
        if target == HERE or HERE in target.parents:
            return None
    return True


def load_graph(extent: Any = SMALL_EXTENT, bands: list[str] | None = None, fmt: str = "GTiff",
               temporal: list[str] | None = None, ndvi: bool = False) -> dict[str, Any]:
    """``{"process_graph": …}``: load_collection over the demo collection (→ ndvi) → save_result."""
    nodes: dict[str, Any] = {
        "load": {"process_id": "load_collection", "arguments": {
            "id": COLLECTION, "spatial_extent": extent, "temporal_extent": temporal or TWO_WEEKS,
            "bands": bands or (["B04", "B08"] if ndvi else ["B04"])}},
    }
    data = {"from_node": "load"}
    if ndvi:
        nodes["ndvi"] = {"process_id": "ndvi", "arguments": {"data": data}}
        nodes["reduce"] = {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {
                "max": {"process_id": "max", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}}
        data = {"from_node": "reduce"}
    nodes["save"] = {"process_id": "save_result", "arguments": {"data": data, "format": fmt}, "result": True}
    return {"process_graph": nodes}


def request_body(extent: Any = SMALL_EXTENT, **kwargs: Any) -> dict[str, Any]:
    """A ``/result``, ``/validation`` or ``/jobs`` body: ``{"process": {"process_graph": …}}``."""
    return {"process": load_graph(extent, **kwargs)}


_PYTHON_TEXT = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|"
    r"\b(?:Key|Type|Value|Attribute|Index|Runtime|Memory|Recursion|Overflow|ZeroDivision|Assertion|OS|"
    r"Lookup|NotImplemented|Name|Unicode(?:De|En)code|JSONDecode|Import|Permission|FileNotFound)Error\b|"
    r"\bStopIteration\b|<(?:function|object|class) [^>]*>"
)


def python_text(text: str) -> str | None:
    """The first piece of Python exception text (traceback lines, exception class names) in ``text``."""
    match = _PYTHON_TEXT.search(text)
    return match.group(0) if match else None


def describe(response: requests.Response) -> str:
    return f"{response.request.method} {response.request.url} -> {response.status_code} {response.text[:600]!r}"


def assert_no_python_text(response: requests.Response) -> None:
    if response.status_code >= 500:
        leaked = python_text(response.text)
        assert leaked is None, f"a server error shows Python exception text ({leaked!r}): {describe(response)}"


def assert_openeo_error(response: requests.Response, *, status: int | tuple[int, ...] | None = None,
                        code: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """A 4xx (or the given status) openEO error document ``{"id", "code", "message", "links"}``."""
    assert_no_python_text(response)
    statuses = (status,) if isinstance(status, int) else status
    if statuses is None:
        assert 400 <= response.status_code < 500, f"expected a 4xx openEO error: {describe(response)}"
    else:
        assert response.status_code in statuses, f"expected status {statuses}: {describe(response)}"
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"the error is not JSON: {describe(response)}") from None
    assert isinstance(body, dict) and {"id", "code", "message", "links"} <= set(body), \
        f"not an openEO error document: {describe(response)}"
    assert isinstance(body["message"], str) and body["message"].strip(), describe(response)
    codes = (code,) if isinstance(code, str) else code
    if codes is not None:
        assert body["code"] in codes, f"expected code {codes}: {describe(response)}"
    return body


def assert_refused(response: requests.Response) -> str:
    """A clear refusal: a 4xx openEO error, or (``/validation``) status 200 with a non-empty ``errors``
    list of ``{"code", "message"}``. Returns the error code."""
    assert_no_python_text(response)
    if response.request.path_url.split("?")[0].endswith("/validation") and response.status_code == 200:
        errors = response.json().get("errors")
        assert errors, f"/validation found nothing wrong: {describe(response)}"
        assert all(isinstance(e, dict) and e.get("code") and e.get("message") for e in errors), describe(response)
        assert errors[0]["code"] != "Internal", describe(response)
        return str(errors[0]["code"])
    return str(assert_openeo_error(response)["code"])


def timed(send, *args: Any, **kwargs: Any) -> tuple[requests.Response, float]:
    """``send(*args, **kwargs)`` (a requests function) and the seconds until the whole answer was read."""
    start = time.monotonic()
    response = send(*args, **kwargs)
    _ = response.content
    return response, time.monotonic() - start


def token_payload(token: str) -> bytes:
    """The readable part of an itsdangerous ``URLSafeTimedSerializer`` token (the part before the
    first '.'; base64url, zlib-compressed when the token starts with '.')."""
    compressed = token.startswith(".")
    part = token[1:].split(".", 1)[0] if compressed else token.split(".", 1)[0]
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return zlib.decompress(raw) if compressed else raw


@dataclass
class Server:
    """A running reliability server: its root URL, data folder, and bearer tokens fetched once per user."""

    root: str
    data_dir: Path
    log: Path
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"{self.root}/openeo/1.2"

    def headers(self, user: str = "demo") -> dict[str, str]:
        if user not in self._tokens:
            response = requests.get(f"{self.api}/credentials/basic", auth=(user, USERS[user]), timeout=30)
            response.raise_for_status()
            self._tokens[user] = response.json()["access_token"]
        return {"Authorization": f"Bearer basic//{self._tokens[user]}"}

    def create_job(self, body: dict[str, Any], user: str = "demo") -> requests.Response:
        return requests.post(f"{self.api}/jobs", json=body, headers=self.headers(user), timeout=30)

    def wait_for_job(self, job_id: str, user: str = "demo", timeout: float = 120) -> dict[str, Any]:
        """The job's description once it is finished, failed or canceled (or when ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        while True:
            job = requests.get(f"{self.api}/jobs/{job_id}", headers=self.headers(user), timeout=30).json()
            if job.get("status") in ("finished", "error", "canceled") or time.monotonic() > deadline:
                return job
            time.sleep(0.5)


@contextmanager
def reliability_server(demo_data: Path, data_dir: Path, **settings: str) -> Iterator[Server]:
    """``terracube serve`` over the generated demo data, in a data folder of its own."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "demo").symlink_to(demo_data / "demo", target_is_directory=True)
    env = server_env(data_dir, TERRACUBE_THREADS="4", TERRACUBE_MAX_REQUEST_MB=str(MAX_REQUEST_MB))
    env.update(settings)
    log = data_dir / "server.log"
    with running_server(env, log) as root:
        yield Server(root, data_dir, log)


@pytest.fixture(scope="session")
def server(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real server for the reliability suite (session-wide)."""
    with reliability_server(demo_data, tmp_path_factory.mktemp("reliability") / "server") as running:
        yield running


def job_id_of(response: requests.Response) -> str:
    assert response.status_code == 201, describe(response)
    return response.headers["OpenEO-Identifier"]


def json_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)

