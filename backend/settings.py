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
    sync_timeout_seconds: int = 300
    """Wall-clock limit of a synchronous request (``TERRACUBE_SYNC_TIMEOUT_SECONDS``); 5 minutes, as the
    openEO federation expects."""
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
    tile_cache_mb: int = 64
    """Rendered map tiles kept in memory by each API worker, in MiB (``TERRACUBE_TILE_CACHE_MB``); 0: none."""
    tile_cache_dir: Path | None = None
    """A folder where rendered map tiles are kept on disk, shared by the workers and kept across restarts
    (``TERRACUBE_TILE_CACHE_DIR``); unset: no disk cache."""
    tile_cache_disk_mb: int = 1024
    """Most MiB the disk tile cache holds; the oldest tiles go first (``TERRACUBE_TILE_CACHE_DISK_MB``)."""
    oidc_providers: tuple[Mapping[str, Any], ...] = ()
    """OpenID Connect providers (``TERRACUBE_OIDC_PROVIDERS``): a JSON list in the form ``GET /credentials/oidc``
    serves them (``id``, ``issuer``, ``title``, ``scopes``, ``default_clients``), each optionally with an
    ``audience`` its JWT access tokens must name (checked, not published); empty: HTTP Basic only."""
    oidc_roles_claim: str = "groups"
    """The access-token or userinfo claim that lists a user's roles, e.g. ``eduperson_entitlement``
    (``TERRACUBE_OIDC_ROLES_CLAIM``)."""
    oidc_admin_role: str | None = None
    """A value of that claim that makes its user an administrator: the user gets the role ``admin``
    (``TERRACUBE_OIDC_ADMIN_ROLE``); unset: nobody logged in with OpenID Connect is one."""

    # --- accounts: roles, per-user limits, retention, billing (docs/accounts.md) ----------------------------
    admins: tuple[str, ...] = ()
    """User ids that have the role ``admin`` besides ``user`` (``TERRACUBE_ADMINS``, comma-separated); an
    identity provider may give users further roles (see ``limits``)."""
    limits: Mapping[str, Mapping[str, int | None]] = field(default_factory=lambda: {
        "user": {"running_jobs": 5, "result_mb": 102_400, "workspace_mb": 20_480, "sync_pixels": None},
        "admin": {"running_jobs": None, "result_mb": None, "workspace_mb": None, "sync_pixels": None},
    })
    """Limits per role (``TERRACUBE_LIMITS``, JSON ``{"role": {"limit": value}}``, merged over these defaults):
    ``running_jobs`` (batch jobs queued or running at once), ``result_mb`` (MiB of stored job results),
    ``workspace_mb`` (MiB of uploaded files), ``sync_pixels`` (values one ``load_collection`` of ``/result``
    may give; ``null``: ``sync_max_pixels``). Otherwise ``null`` means unlimited; a user with several roles
    gets the most generous value of each."""
    result_retention_days: int = 90
    """Days a finished job's results are kept; the job runner removes older ones
    (``TERRACUBE_RESULT_RETENTION_DAYS``; 0 keeps them forever)."""
    job_retention_days: int = 365
    """Days a job's metadata and logs are kept after its last change; the job runner removes older jobs
    (``TERRACUBE_JOB_RETENTION_DAYS``; 0 keeps them forever)."""
    retention_sweep_minutes: int = 60
    """How often the job runner removes expired results and jobs (``TERRACUBE_RETENTION_SWEEP_MINUTES``)."""
    prices: Mapping[str, Any] | None = None
    """The price list (``TERRACUBE_PRICES``, JSON): ``currency`` (required), ``plan`` (its name), and the
    prices ``cpu_seconds`` (per CPU second), ``result_gb`` (per GB of results written), ``input_megapixels``
    (per million values read). Unset: no billing, no costs."""

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
    def stac_index_dir(self) -> Path:
        """Where the item indexes of static catalogs are kept between runs (``processes.data.item_index``)."""
        return self.data_dir / "stac-index"

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
            if f.name in ("data_dir", "tile_cache_dir"):
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
        if name in ("result_retention_days", "job_retention_days", "retention_sweep_minutes"):
            return int(value)
        if name == "admins":
            return _names(value)
        if name == "limits":
            return _limits(value)
        if name == "prices":
            return _prices(value)
        if name in ("port", "token_ttl_seconds", "sync_max_pixels", "sync_timeout_seconds", "workers", "threads",
                    "max_running_jobs", "result_link_ttl_seconds", "job_heartbeat_timeout_seconds",
                    "job_max_pixels", "max_request_mb", "worker_max_mb", "tile_cache_mb", "tile_cache_disk_mb"):
            return int(value)
        if name in ("data_dir", "tile_cache_dir"):
            return Path(value)
        if name in ("demo", "embedded_runner"):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if name == "stac":
            if isinstance(value, str) and value.lstrip().startswith("["):
                value = json.loads(value)
            items = value if isinstance(value, list) else str(value).split(",")
            return tuple(s.strip() for s in items if s.strip())
        if name == "oidc_providers":
            providers = json.loads(value) if isinstance(value, str) else value
            if not isinstance(providers, list) or not all(isinstance(p, Mapping) for p in providers):
                raise ValueError('expected a JSON list of providers, e.g. [{"id": "egi", "issuer": '
                                 '"https://aai.egi.eu/auth/realms/egi", "title": "EGI", "scopes": ["openid"]}]')
            return tuple(dict(p) for p in providers)
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


LIMIT_NAMES = ("running_jobs", "result_mb", "workspace_mb", "sync_pixels")
"""The per-role limits of ``TERRACUBE_LIMITS``."""
PRICE_NAMES = ("cpu_seconds", "result_gb", "input_megapixels")
"""The prices of ``TERRACUBE_PRICES``, each per unit of one part of a job's measured usage."""


def _names(value: Any) -> tuple[str, ...]:
    """A list from JSON (``["a", "b"]``), TOML or a comma-separated string."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        value = json.loads(value)
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(str(s).strip() for s in items if str(s).strip())


def _limits(value: Any) -> dict[str, dict[str, int | None]]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError('give a JSON object of roles, e.g. {"user": {"running_jobs": 2, "workspace_mb": 1024}}')
    merged = {role: dict(limits) for role, limits in Settings().limits.items()}
    for role, given in value.items():
        if not isinstance(given, Mapping):
            raise ValueError(f"role '{role}' needs an object of limits ({', '.join(LIMIT_NAMES)})")
        unknown = sorted(set(given) - set(LIMIT_NAMES))
        if unknown:
            raise ValueError(f"unknown limits {unknown} for role '{role}'; known: {', '.join(LIMIT_NAMES)}")
        for limit, amount in given.items():
            if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount < 0):
                raise ValueError(f"limit '{limit}' of role '{role}' must be a whole number ≥ 0 or null (unlimited)")
        merged.setdefault(str(role), {}).update(given)
    return merged


def _prices(value: Any) -> dict[str, Any] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError('give a JSON object, e.g. {"currency": "EUR", "cpu_seconds": 0.001, "result_gb": 0.1}')
    unknown = sorted(set(value) - {"currency", "plan", *PRICE_NAMES})
    if unknown:
        raise ValueError(f"unknown keys {unknown}; known: currency, plan, {', '.join(PRICE_NAMES)}")
    currency = value.get("currency")
    if not isinstance(currency, str) or not currency.strip():
        raise ValueError('name the currency of the prices, e.g. "currency": "EUR"')
    for name in PRICE_NAMES:
        price = value.get(name, 0)
        if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
            raise ValueError(f"price '{name}' must be a number ≥ 0")
    return dict(value)
