"""The ``terracube`` command: ``serve`` (gunicorn), ``worker`` (the job runner), ``demo`` (generate demo
data) and ``users`` (the users and their usage, for operators)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from backend.api.versions import API_VERSIONS
from backend.settings import Settings, SettingsError
from processes.core.errors import OpenEOError


def _serve(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication

    from backend.app import create_app
    from backend.worker_memory import check_ceiling, guard_worker
    from processes.core.collector import freeze_startup_objects

    settings = Settings.from_env()
    if not settings.demo_catalog.is_file() and settings.demo and args.demo_if_missing:
        _generate_demo(settings.demo_dir, "small")
    app = create_app(settings)  # fail fast on bad settings or STAC sources, before forking workers
    freeze_startup_objects()
    check_ceiling(settings.worker_max_mb)  # a fresh worker is at most this process's size

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", settings.workers)
            self.cfg.set("threads", settings.threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", settings.sync_timeout_seconds + 60)
            # no gunicorn access log: it would write result-link tokens and tile keys; every request has
            # its line in the server log already, with those masked (backend/access_log.py)
            self.cfg.set("accesslog", None)
            # The memory ceiling: every worker watches its own resident memory (backend/worker_memory.py).
            self.cfg.set("post_fork", lambda _arbiter, _worker: guard_worker(settings.worker_max_mb))
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn 25.1+ opens a control socket at one fixed path per user ($XDG_RUNTIME_DIR or
                # ~/.gunicorn/gunicorn.ctl), which servers of the same user (tests, replicas) take from
                # each other; the data dir is no better (shared by replicas). Terracube does not use it.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return app

    runner = _start_embedded_runner() if settings.embedded_runner else None
    url = f"http://{settings.host}:{settings.port}"
    prefixes = ", ".join(f"{url}{v.prefix}/" for v in API_VERSIONS)
    print(f"Terracube openEO back-end at {prefixes}  (also {url}/.well-known/openeo)", flush=True)
    if settings.users == {"demo": "demo"}:
        print('Demo credentials: user "demo", password "demo"  '
              f'(openeo.connect("{url}").authenticate_basic("demo", "demo"))', flush=True)
    try:
        _Server().run()
    finally:
        if runner is not None:
            runner.terminate()
            try:
                runner.wait(timeout=30)
            except subprocess.TimeoutExpired:
                runner.kill()
    return 0


def _start_embedded_runner() -> subprocess.Popen:
    """The job runner as a child process of the server (it stops when the server is gone)."""
    return subprocess.Popen([sys.executable, "-m", "backend.cli", "worker", "--parent", str(os.getpid())])


def _worker(args: argparse.Namespace) -> int:
    import logging
    import signal

    from backend.jobs.runner import JobRunner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = JobRunner(Settings.from_env())
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    runner.run_forever(parent_pid=args.parent)
    return 0


def _generate_demo(out: Path, size: str) -> None:
    from backend.demo import generate_demo

    summary = generate_demo(out, size)
    print(f"Demo data ({size}) in {out}: {summary}", flush=True)


def _demo(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    out = Path(args.out) if args.out else settings.demo_dir
    from backend.demo import generate_demo

    summary = generate_demo(out, args.size, overwrite=args.overwrite)
    print(summary)
    return 0


def _users(args: argparse.Namespace) -> int:
    """Every user with jobs, files or a configured account, and what they use (store and folders)."""
    import json

    from backend.accounting.usage import all_usage, human_bytes
    from backend.jobs.store import JobStore, make_engine

    settings = Settings.from_env()
    usages = all_usage(settings, JobStore(make_engine(settings.job_store_url)))
    rows = [{"user_id": u.user_id, "roles": ["user", "admin"] if u.user_id in settings.admins else ["user"],
             "jobs": u.jobs, "queued_or_running": u.running, "cpu_seconds": round(u.cpu_seconds, 2),
             "result_bytes": u.result_bytes, "workspace_bytes": u.workspace_bytes,
             **({"costs": u.costs, "currency": settings.prices["currency"]} if settings.prices else {})}
            for u in usages]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    header = ["user", "roles", "jobs", "active", "cpu s", "results", "workspace"]
    header += ["costs"] if settings.prices else []
    table = [header] + [
        [r["user_id"], ",".join(r["roles"]), str(r["jobs"]), str(r["queued_or_running"]), f"{r['cpu_seconds']:.1f}",
         human_bytes(r["result_bytes"]), human_bytes(r["workspace_bytes"])]
        + ([f"{r['costs']:.2f} {r['currency']}"] if settings.prices else [])
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:  # names left, numbers right
        print("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="terracube", description="Terracube openEO back-end")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server (gunicorn); settings from TERRACUBE_* variables")
    serve.add_argument("--demo-if-missing", action="store_true", help="generate the small demo data first if absent")
    serve.set_defaults(run=_serve)

    worker = sub.add_parser("worker", help="run the batch job runner (settings from TERRACUBE_* variables)")
    worker.add_argument("--parent", type=int, help="stop taking jobs when this process (the server) is gone")
    worker.set_defaults(run=_worker)

    demo = sub.add_parser("demo", help="generate the deterministic demo data")
    demo.add_argument("--size", choices=["small", "bench"], default="small")
    demo.add_argument("--out", help="output folder (default: <data dir>/demo)")
    demo.add_argument("--overwrite", action="store_true", help="regenerate even if present")
    demo.set_defaults(run=_demo)

    users = sub.add_parser("users", help="list the users and their usage: jobs, CPU seconds, stored bytes")
    users.add_argument("--json", action="store_true", help="print JSON (bytes and seconds as numbers)")
    users.set_defaults(run=_users)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (SettingsError, OpenEOError) as exc:  # bad settings or STAC sources: say which, no traceback
        print(f"terracube: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
