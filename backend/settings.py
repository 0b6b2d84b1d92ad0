"""Settings: one frozen dataclass, read from ``TERRACUBE_*`` environment variables and an optional TOML file.

Precedence: environment variable > TOML file (``TERRACUBE_CONFIG=path.toml``, keys as the field
names) > default. The defaults give the embedded set-up: data in ``./data``, one demo user, the demo
collections, the server on ``127.0.0.1:8080``.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

API_VERSION = "1.2.0"
API_PREFIX = "/openeo/1.2"


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the variable and the expected form."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    """Interface the server listens on (``TERRACUBE_HOST``)."""
    port: int = 8080
    """TCP port (``TERRACUBE_PORT``)."""
    data_dir: Path = Path("data")
    """Root of everything the server stores: demo data, the token secret, results (``TERRACUBE_DATA_DIR``)."""
    users: Mapping[str, str] = field(default_factory=lambda: {"demo": "demo"})
    """Basic-auth users as ``name:password,name:password`` (``TERRACUBE_USERS``)."""
    secret: str | None = None
    """Key that signs bearer tokens (``TERRACUBE_SECRET``); generated and stored in the data dir if unset."""
    token_ttl_seconds: int = 86_400
    """Lifetime of an issued bearer token (``TERRACUBE_TOKEN_TTL_SECONDS``)."""
    stac: tuple[str, ...] = ()
    """Extra STAC sources, comma-separated: static ``catalog.json``/``collection.json`` paths or STAC
    API collection URLs (``TERRACUBE_STAC``)."""
    demo: bool = True
    """Serve the generated demo collections from ``<data_dir>/demo`` (``TERRACUBE_DEMO``)."""
    sync_max_pixels: int = 400_000_000
    """Most values one ``load_collection`` may give in a synchronous request (``TERRACUBE_SYNC_MAX_PIXELS``)."""
    sync_timeout_seconds: int = 600
    """Wall-clock limit of a synchronous request (``TERRACUBE_SYNC_TIMEOUT_SECONDS``)."""
    workers: int = 2
    """gunicorn worker processes (``TERRACUBE_WORKERS``)."""
    threads: int = 4
    """Threads per gunicorn worker (``TERRACUBE_THREADS``)."""
    title: str = "Terracube"
    """Title of the back-end in the capabilities (``TERRACUBE_TITLE``)."""
    database_url: str | None = None
    """SQLAlchemy URL of the job store (``TERRACUBE_DATABASE_URL``); default SQLite in the data dir."""
    dask_scheduler: str | None = None
    """Address of an existing Dask scheduler for batch jobs, e.g. ``tcp://host:8786``
    (``TERRACUBE_DASK_SCHEDULER``); default: a LocalCluster started by the job runner."""
    max_running_jobs: int = 2
    """Batch jobs one runner executes at the same time (``TERRACUBE_MAX_RUNNING_JOBS``)."""
    embedded_runner: bool = True
    """``terracube serve`` also starts the job runner (``TERRACUBE_EMBEDDED_RUNNER``); set false when
    runners run as their own processes (``terracube worker``)."""
    job_heartbeat_timeout_seconds: int = 60
    """A running job whose process has not reported for this long is queued again
    (``TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS``)."""
    result_link_ttl_seconds: int = 7 * 86_400
    """Lifetime of the signed result download links (``TERRACUBE_RESULT_LINK_TTL_SECONDS``)."""
    job_max_pixels: int = 200_000_000_000
    """Most values one ``load_collection`` may give in a batch job or an estimate
    (``TERRACUBE_JOB_MAX_PIXELS``); bigger requests are refused before anything is built. The default
    holds a year of daily 10 m data over a Sentinel-2 tile in four bands (1.8e11)."""
    max_request_mb: int = 64
    """Largest request body the API accepts, in MiB (``TERRACUBE_MAX_REQUEST_MB``); larger ones get 413."""
    worker_max_mb: int = 6144
    """Memory ceiling of one API worker process, in MiB (``TERRACUBE_WORKER_MAX_MB``): a worker whose
    resident memory passes it is recycled (its requests fail, the server keeps serving)."""

    @property
    def demo_dir(self) -> Path:
        return self.data_dir / "demo"

    @property
    def demo_catalog(self) -> Path:
        return self.demo_dir / "catalog.json"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def job_store_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'terracube.db').resolve()}"

    def token_secret(self) -> str:
        """The signing secret; generated once and kept in ``<data_dir>/secret`` when not configured."""
        if self.secret:
            return self.secret
        path = self.data_dir / "secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_urlsafe(48))
            except FileExistsError:  # another worker won the race; use its secret
                pass
        return path.read_text().strip()

    def as_environment(self) -> dict[str, str]:
        """Every setting as a ``TERRACUBE_*`` variable, so that another process (a batch job's)
        reads exactly these settings with :meth:`from_env`; unset optional settings are left out."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "data_dir":
                text = str(Path(value).resolve())
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, Mapping):
                text = json.dumps(dict(value))
            elif isinstance(value, tuple):
                text = json.dumps(list(value))
            else:
                text = str(value)
            env[f"TERRACUBE_{f.name.upper()}"] = text
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config = environ.get("TERRACUBE_CONFIG")
        if config:
            try:
                values.update(tomllib.loads(Path(config).read_text()))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"TERRACUBE_CONFIG={config}: cannot read the TOML file: {exc}") from exc
        for f in fields(cls):
            raw = environ.get(f"TERRACUBE_{f.name.upper()}")
            if raw is not None:
                values[f.name] = raw
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise SettingsError(f"Unknown settings {sorted(unknown)}; known: {sorted(known)}.")
        return cls(**{name: _convert(name, value) for name, value in values.items()})


def _convert(name: str, value: Any) -> Any:
    var = f"TERRACUBE_{name.upper()}"
    try:
        if name in ("port", "token_ttl_seconds", "sync_max_pixels", "sync_timeout_seconds", "workers", "threads",
                    "max_running_jobs", "result_link_ttl_seconds", "job_heartbeat_timeout_seconds",
                    "job_max_pixels", "max_request_mb", "worker_max_mb"):
            return int(value)
        if name == "data_dir":
            return Path(value)
        if name in ("demo", "embedded_runner"):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if name == "stac":
            if isinstance(value, str) and value.lstrip().startswith("["):
                value = json.loads(value)
            items = value if isinstance(value, list) else str(value).split(",")
            return tuple(s.strip() for s in items if s.strip())
        if name == "users":
            if isinstance(value, str) and value.lstrip().startswith("{"):
                value = json.loads(value)
            if isinstance(value, Mapping):
                return {str(k): str(v) for k, v in value.items()}
            users = {}
            for pair in str(value).split(","):
                if not pair.strip():
                    continue
                user, sep, password = pair.strip().partition(":")
                if not sep or not user or not password:
                    raise ValueError(f"'{pair}' is not name:password")
                users[user] = password
            return users
        if name == "secret" and value is not None and len(str(value)) < 32:
            raise ValueError("use at least 32 characters (HS256 needs a key of 256 bits)")
    except ValueError as exc:
        raise SettingsError(f"{var} is invalid: {exc}") from exc
    return value
