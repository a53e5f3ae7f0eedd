"""How a converge grows with the fleet: site.yml on the lab with 1, 2, 4 and 8 nodes.

For each size, from one run: build a lab of N podman nodes, time a full converge (`sglfleet
up`), a no-change rerun, and a second no-change rerun with every node held to the same CPU quota
(`--cpus-per-node`), then tear the lab down. Prints a table and, as its last line, the 8-node
rerun time over the 1-node rerun time. Target: at most 1.3.

Why two reruns: the lab's nodes are containers on this machine, so with N nodes the nodes' own
work (Python starting modules, apt, systemd) competes for the same few cores and any converge
costs about N times the node CPU. On a real fleet each node has its own CPUs. Holding each
container to a fixed quota gives every node the same CPU at every fleet size, as real nodes
have, so what still grows with N is what the controller does: that is what Ansible's levers
(forks, pipelining, ControlPersist, fact caching, fewer module runs) act on. Pick a quota with
N x quota well under the core count, so that the controller keeps a core of its own: on 2 cores
and 8 nodes, 0.15 leaves it 0.8 of a core and 0.1 leaves it 1.2; `--cpus-per-node 0.15,0.1`
reruns at both, one after the other.

    python benchmarks/converge_scaling.py [--sizes 1,2,4,8] [--cpus-per-node 0.15,0.1] [--keep]

Needs podman and the lab image (`sglfleet lab image`); takes about an hour on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    wall: float
    controller_cpu: float  # sglfleet + ansible-playbook + ssh, user + system seconds
    node_cpu: float  # mean over the nodes, seconds
    changed: int


@dataclass
class Row:
    nodes: int
    full: Run
    shared: Run
    own: list[Run]  # one rerun per quota of --cpus-per-node, in its order


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sglfleet", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )


def podman(*args: str) -> str:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def node_cpu_seconds(container: str) -> float:
    """CPU time the container's cgroup has used (cgroup v1 cpuacct, else v2 cpu.stat)."""
    out = podman(
        "exec",
        container,
        "sh",
        "-c",
        "if [ -r /sys/fs/cgroup/cpuacct/cpuacct.usage ];"
        " then echo ns $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage);"
        " else echo us $(sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat); fi",
    )
    unit, value = out.split()
    return int(value) / (1e9 if unit == "ns" else 1e6)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_up(env: dict[str, str], inventory: str, containers: list[str]) -> Run:
    nodes_before = [node_cpu_seconds(c) for c in containers]
    cpu_before = children_cpu()
    start = time.perf_counter()
    proc = cli(env, "up", "-i", inventory, "--json")
    wall = time.perf_counter() - start
    controller = children_cpu() - cpu_before
    nodes_after = [node_cpu_seconds(c) for c in containers]
    if proc.returncode != 0:
        raise SystemExit(f"converge failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    recap = json.loads(proc.stdout)["recap"]
    node_cpu = sum(a - b for a, b in zip(nodes_after, nodes_before, strict=True)) / len(containers)
    changed = sum(counts["changed"] for counts in recap.values())
    return Run(wall, controller, node_cpu, changed)


def measure(size: int, quotas: list[float], keep: bool) -> Row:
    with tempfile.TemporaryDirectory(prefix=f"sglfleet-bench-{size}-") as home:
        env = {
            **os.environ,
            "SGLFLEET_HOME": home,
            "SGLFLEET_LAB_NAME": f"sglfleet-bench-{size}",
        }
        up = cli(env, "lab", "up", "--nodes", str(size), "--json")
        if up.returncode != 0:
            raise SystemExit(up.stderr)
        lab = json.loads(up.stdout)
        inventory = lab["inventory"]
        containers = [node["container"] for node in lab["nodes"]]
        try:
            full = timed_up(env, inventory, containers)
            shared = timed_up(env, inventory, containers)
            own = []
            for cpus in quotas:
                for container in containers:
                    podman("update", "--cpus", str(cpus), container)
                own.append(timed_up(env, inventory, containers))
        finally:
            if not keep:
                cli(env, "lab", "down", "--keep-image")
        return Row(size, full, shared, own)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4,8")
    parser.add_argument(
        "--cpus-per-node",
        default="0.15",
        help="CPU quota of each node for the reruns after the shared one, one rerun per value"
        " (comma-separated, tightest last is fine; 0: none)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the labs running")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    quotas = [float(q) for q in args.cpus_per_node.split(",") if float(q) > 0]
    load = os.getloadavg()[0]
    rows = []
    for size in sizes:
        row = measure(size, quotas, args.keep)
        rows.append(row)
        print(
            f"  measured {size} node(s): full {row.full.wall:.0f} s, rerun {row.shared.wall:.0f} s"
            + "".join(
                f", rerun at {q} CPU {run.wall:.0f} s"
                for q, run in zip(quotas, row.own, strict=True)
            ),
            file=sys.stderr,
        )
    cores = os.cpu_count() or 1
    print(f"# {cores} cores, load {load:.2f} at the start; per-node quotas {quotas}")
    print(
        f"{'nodes':>5} {'full (s)':>9} {'rerun (s)':>10} {'changed':>8} {'ctl CPU (s)':>12}"
        f" {'node CPU (s)':>13} {'x 1-node':>9}"
        + "".join(f" {f'rerun@{q} (s)':>15} {'x 1-node':>9}" for q in quotas)
    )
    base = rows[0].shared.wall
    for row in rows:
        own = "".join(
            f" {run.wall:>15.1f} {run.wall / first.wall:>9.2f}"
            for run, first in zip(row.own, rows[0].own, strict=True)
        )
        print(
            f"{row.nodes:>5} {row.full.wall:>9.1f} {row.shared.wall:>10.1f} {row.shared.changed:>8}"
            f" {row.shared.controller_cpu:>12.1f} {row.shared.node_cpu:>13.1f}"
            f" {row.shared.wall / base:>9.2f}{own}"
        )
    last, first = rows[-1], rows[0]
    headline = f"no-change rerun, {last.nodes} nodes vs {first.nodes}: "
    for quota, run, first_run in zip(quotas, last.own, first.own, strict=True):
        headline += f"{run.wall / first_run.wall:.2f}x with each node held to {quota} CPU; "
    headline += f"{last.shared.wall / first.shared.wall:.2f}x with all nodes sharing {cores} cores"
    print(headline)


if __name__ == "__main__":
    main()
