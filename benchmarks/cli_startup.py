"""Start-up time of the CLI: `sglfleet --help` and `sglfleet version` against a bare interpreter.

Prints a table of median wall times over --runs runs and, as its last line, the median of
`sglfleet --help` in milliseconds.

    python benchmarks/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "sglfleet version": [sys.executable, "-m", "sglfleet", "version"],
    "sglfleet --help": [sys.executable, "-m", "sglfleet", "--help"],
}


def median_ms(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, cwd=ROOT)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    results = {name: median_ms(argv, args.runs) for name, argv in COMMANDS.items()}
    base = results["python -c pass (baseline)"]
    print(f"{'command':<28} {'median ms':>10} {'x baseline':>11}")
    for name, ms in results.items():
        print(f"{name:<28} {ms:>10.0f} {ms / base:>11.1f}")
    print(f"sglfleet --help: {results['sglfleet --help']:.0f} ms")


if __name__ == "__main__":
    main()
