#!/usr/bin/env python3
"""`doscale backtest` speed: 30 days of 1-minute passes (43 200 passes) for one configuration
whose group follows a bursty diurnal demand between 2 and 50 droplets. Target: <= 60 s.

Run from the project root:   python3 bench/backtest.py        (builds the release binary)
Options:                      --days 30 --peak 30 --runs 1 --no-build

The trace is made by `doscale backtest --synth bursty` (bursts lift the peak of 30 to about 60,
so the group spends hours at its max of 50); the configuration is bench/backtest.toml (target
tracking on CPU, as the example configuration's target, bounds 2..50). Nothing is contacted:
the fleet is simulated in-process. Prints the wall time, peak RSS and the table.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "doscale")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--peak", type=float, default=30)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "doscale"], cwd=ROOT, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN")}
    env["NO_COLOR"] = "1"
    with tempfile.TemporaryDirectory() as d:
        trace = os.path.join(d, "trace.csv")
        with open(trace, "w") as f:
            subprocess.run([BIN, "backtest", "--synth", "bursty", "--days", str(a.days), "--peak", str(a.peak)],
                           stdout=f, check=True, env=env)
        cmd = [BIN, "backtest", "--config", os.path.join(ROOT, "bench", "backtest.toml"), "--trace", trace]
        walls = []
        for _ in range(a.runs):
            t0 = time.monotonic()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            walls.append(time.monotonic() - t0)
            if out.returncode != 0:
                sys.exit(f"backtest failed ({out.returncode}): {out.stderr}")
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(out.stdout, end="")
        best = min(walls)
        print(f"wall: {best:.1f} s (best of {a.runs}; target 60 s), peak RSS {rss:.1f} MB")
        return 0 if best <= 60 else 1


if __name__ == "__main__":
    sys.exit(main())
