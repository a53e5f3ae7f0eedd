"""How a converge grows with the fleet: site.yml on the lab with 1, 2, 4 and 8 nodes.

For each size, from one run: build a lab of N podman nodes, time a full converge
(`sglfleet up`), then a no-change rerun, then tear the lab down. Prints a table and, as its
last line, the 8-node rerun time over the 1-node rerun time. Target: at most 1.3.

    python benchmarks/converge_scaling.py [--sizes 1,2,4,8] [--keep]

Needs podman and the lab image (`sglfleet lab image`); takes tens of minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sglfleet", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )


def timed_up(env: dict[str, str], inventory: str) -> tuple[float, dict[str, dict[str, int]]]:
    start = time.perf_counter()
    proc = cli(env, "up", "-i", inventory, "--json")
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"converge failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed, json.loads(proc.stdout)["recap"]


def measure(size: int, keep: bool) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory(prefix=f"sglfleet-bench-{size}-") as home:
        env = {
            **os.environ,
            "SGLFLEET_HOME": home,
            "SGLFLEET_LAB_NAME": f"sglfleet-bench-{size}",
        }
        up = cli(env, "lab", "up", "--nodes", str(size), "--json")
        if up.returncode != 0:
            raise SystemExit(up.stderr)
        inventory = json.loads(up.stdout)["inventory"]
        try:
            full, _ = timed_up(env, inventory)
            rerun, recap = timed_up(env, inventory)
        finally:
            if not keep:
                cli(env, "lab", "down", "--keep-image")
        changed = sum(counts["changed"] for counts in recap.values())
        return full, rerun, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4,8")
    parser.add_argument("--keep", action="store_true", help="leave the labs running")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for size in sizes:
        full, rerun, changed = measure(size, args.keep)
        rows.append((size, full, rerun, changed))
        print(f"  measured {size} node(s): full {full:.0f} s, rerun {rerun:.0f} s", file=sys.stderr)
    base = rows[0][2]
    print(
        f"{'nodes':>5} {'full converge (s)':>18} {'no-change rerun (s)':>20} "
        f"{'rerun changed':>14} {'rerun / 1-node':>15}"
    )
    for size, full, rerun, changed in rows:
        print(f"{size:>5} {full:>18.1f} {rerun:>20.1f} {changed:>14} {rerun / base:>15.2f}")
    print(f"no-change rerun, {rows[-1][0]} nodes vs {rows[0][0]}: {rows[-1][2] / base:.2f}x")


if __name__ == "__main__":
    main()
