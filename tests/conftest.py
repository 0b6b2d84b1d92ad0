"""Shared fixtures: generated demo data, the real server on a free port, the openEO client.

``live_server`` starts ``terracube serve`` (gunicorn, real HTTP) as a subprocess over demo data
generated once per test session, plus the Bolzano Sentinel-2 sample and the DEM samples (collection
``DEM``) from ``../shared/data`` when they exist. ``app``/``client`` give a Flask app and test client
with fresh settings for narrow API tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from backend.devserver import running_server

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
BOLZANO_CATALOG = SHARED_DATA / "s2-bolzano" / "catalog.json"
DEM_CATALOG = SHARED_DATA / "dem" / "catalog.json"
USERS = {"demo": "demo", "alice": "alice-secret"}
TEST_SECRET = "a-test-secret-of-forty-characters-length"


def shared_path(relative: str) -> Path:
    """A file of ``../shared/data``; skips the test with the reason where it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"needs the shared sample data at {path} (not part of a user's clone)")
    return path


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The small demo data set, generated once per session."""
    from backend.demo import generate_demo

    data_dir = tmp_path_factory.mktemp("terracube-data")
    generate_demo(data_dir / "demo", "small")
    return data_dir


@dataclass(frozen=True)
class LiveServer:
    root: str
    """e.g. ``http://127.0.0.1:PORT``"""
    data_dir: Path

    @property
    def api(self) -> str:
        return f"{self.root}/openeo/1.2"

    def token(self, user: str = "demo") -> str:
        response = requests.get(f"{self.api}/credentials/basic", auth=(user, USERS[user]), timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def headers(self, user: str = "demo") -> dict[str, str]:
        return {"Authorization": f"Bearer basic//{self.token(user)}"}


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "TERRACUBE_DATA_DIR": str(data_dir),
        "TERRACUBE_USERS": ",".join(f"{u}:{p}" for u, p in USERS.items()),
        "TERRACUBE_WORKERS": "2",
        "TERRACUBE_THREADS": "2",
    }
    shared = [str(path) for path in (BOLZANO_CATALOG, DEM_CATALOG) if path.exists()]
    if shared:
        env["TERRACUBE_STAC"] = ",".join(shared)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def live_server(demo_data: Path) -> Iterator[LiveServer]:
    with running_server(server_env(demo_data), demo_data / "server.log") as root:
        yield LiveServer(root, demo_data)


@pytest.fixture
def connection(live_server: LiveServer):
    """The real openEO Python client, logged in as the demo user."""
    import openeo

    return openeo.connect(live_server.root).authenticate_basic("demo", "demo")


@pytest.fixture
def app(demo_data: Path, tmp_path: Path):
    from backend.app import create_app
    from backend.settings import Settings

    settings = Settings(
        data_dir=tmp_path,
        users=USERS,
        secret=TEST_SECRET,
        stac=(str(demo_data / "demo" / "catalog.json"),),
        demo=False,
    )
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth_headers(client) -> dict[str, str]:
    import base64

    basic = base64.b64encode(b"demo:demo").decode()
    token = client.get("/openeo/1.2/credentials/basic", headers={"Authorization": f"Basic {basic}"}).json[
        "access_token"
    ]
    return {"Authorization": f"Bearer basic//{token}"}
