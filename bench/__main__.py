"""Benchmarks: ``python -m bench [NAME …]`` (``make bench``).

Each benchmark runs Terracube end to end (the real server over HTTP) and a hand-written
rasterio + numpy baseline on the same files in the same run, and prints one JSON line:
``{"name", "engine_s", "direct_s", "ratio", "peak_rss_mb", <throughput>}`` — ratios, because
machines are noisy. The bench data (``terracube demo --size bench``) is generated once into
``$TERRACUBE_BENCH_DIR`` (default ``./data/bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench import j_jobs, s_search, t_tiles, udf, v1_validation, w1_parcels, w2_composite

BENCHMARKS = {"W1": w1_parcels.run, "W2": w2_composite.run, "V1": v1_validation.run, "udf": udf.run,
              "J1": j_jobs.run_j1, "J2": j_jobs.run_j2, "T": t_tiles.run, "S": s_search.run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help=f"benchmarks: {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    data_dir = Path(os.environ.get("TERRACUBE_BENCH_DIR", "data/bench")).resolve()
    from backend.demo import generate_demo

    generate_demo(data_dir / "demo", "bench")
    for name in args.names:
        results = BENCHMARKS[name](data_dir)
        for result in results if isinstance(results, list) else [results]:
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
