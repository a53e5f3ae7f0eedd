"""Which Ansible levers make a no-change rerun cheap: each one switched off in turn.

Builds a lab of N podman nodes, converges it once, then times a no-change rerun of site.yml
(`sglfleet up`) with everything as shipped and with one lever switched off at a time through
Ansible's own environment variables (or a run control), in one run. Prints a table and, as its
last line, the lever whose absence costs the most.

    python benchmarks/converge_levers.py [--nodes 4]

Needs podman and the lab image (`sglfleet lab image`); about 20 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

# The lab CLI wrapper and the controller-CPU reading are converge_scaling's (same folder, on
# sys.path when run as `python benchmarks/converge_levers.py`).
from converge_scaling import children_cpu, cli

# name -> (environment overrides, extra `sglfleet up` arguments)
SETTINGS: dict[str, tuple[dict[str, str], list[str]]] = {
    "as shipped": ({}, []),
    "no SSH pipelining": ({"ANSIBLE_PIPELINING": "False"}, []),
    "no ControlPersist": ({"ANSIBLE_SSH_ARGS": "-o ControlMaster=no"}, []),
    "facts gathered every play, no cache": (
        {"ANSIBLE_GATHERING": "implicit", "ANSIBLE_CACHE_PLUGIN": "memory"},
        [],
    ),
    "apt tasks not gated on dpkg-query": ({}, ["-e", "sglfleet_installed_packages=null"]),
}


def timed_up(env: dict[str, str], inventory: str, extra: list[str]) -> tuple[float, float, int]:
    cpu = children_cpu()
    start = time.perf_counter()
    proc = cli(env, "up", "-i", inventory, "--json", *extra)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"converge failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    recap = json.loads(proc.stdout)["recap"]
    return wall, children_cpu() - cpu, sum(c["changed"] for c in recap.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    args = parser.parse_args()
    rows: list[tuple[str, float, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="sglfleet-levers-") as home:
        env = {**os.environ, "SGLFLEET_HOME": home, "SGLFLEET_LAB_NAME": "sglfleet-levers"}
        up = cli(env, "lab", "up", "--nodes", str(args.nodes), "--json")
        if up.returncode != 0:
            raise SystemExit(up.stderr)
        inventory = json.loads(up.stdout)["inventory"]
        try:
            full, _, _ = timed_up(env, inventory, [])
            print(f"  full converge of {args.nodes} nodes: {full:.0f} s", file=sys.stderr)
            for name, (overrides, extra) in SETTINGS.items():
                wall, cpu, changed = timed_up({**env, **overrides}, inventory, extra)
                rows.append((name, wall, cpu, changed))
                print(f"  {name}: {wall:.0f} s", file=sys.stderr)
        finally:
            if not args.keep:
                cli(env, "lab", "down", "--keep-image")
    base = rows[0][1]
    print(f"# {args.nodes} lab nodes, {os.cpu_count()} cores; no-change rerun of site.yml")
    print(f"{'setting':<38} {'rerun (s)':>10} {'ctl CPU (s)':>12} {'changed':>8} {'x shipped':>10}")
    for name, wall, cpu, changed in rows:
        print(f"{name:<38} {wall:>10.1f} {cpu:>12.1f} {changed:>8} {wall / base:>10.2f}")
    worst = max(rows[1:], key=lambda row: row[1])
    print(f"costliest lever to lose: {worst[0]} ({worst[1] / base:.2f}x the shipped rerun)")


if __name__ == "__main__":
    main()
