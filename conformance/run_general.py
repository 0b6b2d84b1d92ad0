"""Run the official openEO test suite's ``general`` module (or others) against a live Terracube.

Starts the server on a free port over the demo data (generated if missing) plus the shared
Bolzano Sentinel-2 sample, runs ``../shared/conformance/run-suite URL MODULE…`` with basic auth, and
prints the suite's summary. ``--record`` writes the counts into ``conformance/RESULTS.md``.

    python conformance/run_general.py [--record] [MODULE ...]     (default module: general)
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from backend.devserver import REPO, running_server

KIT = REPO.parent / "shared" / "conformance"
BOLZANO = REPO.parent / "shared" / "data" / "s2-bolzano" / "catalog.json"
RESULTS = REPO / "conformance" / "RESULTS.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=["general"])
    parser.add_argument("--record", action="store_true", help="write the counts into conformance/RESULTS.md")
    parser.add_argument("--data-dir", default=str(REPO / "data"))
    args = parser.parse_args()
    if not (KIT / "run-suite").exists():
        print(f"the conformance kit is not at {KIT}; nothing to run", file=sys.stderr)
        return 1

    data_dir = Path(args.data_dir).resolve()
    from backend.demo import generate_demo

    generate_demo(data_dir / "demo", "small")
    env = {
        "TERRACUBE_DATA_DIR": str(data_dir),
        "TERRACUBE_USERS": "demo:demo",
        "TERRACUBE_WORKERS": "2",
    }
    if BOLZANO.exists():
        env["TERRACUBE_STAC"] = str(BOLZANO)
    report = Path(tempfile.mkdtemp(prefix="conformance-"))
    with running_server(env, report / "server.log") as root:
        suite_env = {
            **os.environ,
            "OPENEO_AUTH_METHOD": "basic",
            "OPENEO_AUTH_BASIC_USERNAME": "demo",
            "OPENEO_AUTH_BASIC_PASSWORD": "demo",
            "REPORT_DIR": str(report),
        }
        subprocess.run([str(KIT / "run-suite"), f"{root}/openeo/1.2/", *args.modules], env=suite_env, check=False)
    summary = (report / "summary.txt").read_text()
    print(summary)
    print(f"reports in {report}")
    if args.record:
        _record(summary)
    return 0


def _record(summary: str) -> None:
    lines = [line for line in summary.splitlines() if re.search(r"passed=", line)]
    stamp = datetime.date.today().isoformat()
    text = RESULTS.read_text() if RESULTS.exists() else "# Conformance results\n"
    block = "\n".join(f"- {line.strip()}" for line in lines)
    marker = "<!-- http-suite -->"
    section = f"{marker}\n## Official suite over HTTP ({stamp})\n\n{block}\n{marker}"
    if marker in text:
        text = re.sub(f"{marker}.*?{marker}", section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
