#!/usr/bin/env python3
"""Benchmark: `sglfleet rollout` wall time against the groups' own restart-to-ready times.

On a converged lab (`sglfleet lab up` + serving converged; the inventory is the lab's, because the
benchmark edits its desired state), for each serving group in turn:
  1. take it out of the router, then restart it directly over ssh (stop rank 0 first, then the
     members; start all members; poll rank 0's /health_generate) -> the group's own
     restart-to-ready time, the floor any rolling update pays; put it back in the router;
then
  2. change every group's desired state (an environment variable in the group's `env`, which
     changes server.env and so needs a restart) and run `sglfleet rollout` in-process -> its wall
     time, including the --check detection, router removal, drain, apply, readiness, smoke test
     and router re-add of every group.
The overhead ratio is (2) / sum of (1). The last line is the headline ratio.

Usage: PYTHONPATH=src python3 benchmarks/rollout_overhead.py [--inventory LAB_INVENTORY]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sglfleet.ops import ssh_argv
from sglfleet.paths import sglfleet_home
from sglfleet.rollout import RolloutOptions, run_rollout
from sglfleet.rollout.http import ready
from sglfleet.rollout.steps import Cluster, Target, drain, load_cluster


def ssh(cluster: Cluster, host: str, *command: str) -> None:
    subprocess.run(ssh_argv(cluster.inv.hosts[host], list(command)), check=True, timeout=900)


def direct_restart(cluster: Cluster, target: Target, timeout_s: float) -> float:
    """Stop (rank 0 first) and start the members over ssh; seconds until rank 0 is ready."""
    router = cluster.router()
    if router is not None and target.routed:
        router.remove(target.rank0_url)
    drain(target, 60)
    t0 = time.monotonic()
    for host in target.hosts:  # rank order: rank 0 first
        ssh(cluster, host, "systemctl", "stop", target.unit)
    for host in target.hosts:
        ssh(cluster, host, "systemctl", "start", "--no-block", target.unit)
    while not ready(target.rank0_url):
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit(f"{target.name} not ready after {timeout_s}s")
        time.sleep(0.2)
    seconds = time.monotonic() - t0
    if router is not None and target.routed:
        router.add(target.rank0_url, target.worker_type, target.bootstrap_port)
    return seconds


def change_desired_state(inventory: Path) -> str:
    lab_vars = inventory / "group_vars" / "all" / "lab.yml"
    document = yaml.safe_load(lab_vars.read_text())
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for group in document["sglfleet_serving_groups"]:
        group.setdefault("env", {})["SGLFLEET_BENCHMARK_STAMP"] = stamp
    lab_vars.write_text("---\n" + yaml.safe_dump(document, sort_keys=False))
    return stamp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, default=sglfleet_home() / "lab" / "inventory")
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    args = parser.parse_args()
    cluster = load_cluster(args.inventory)
    own: dict[str, float] = {}
    for target in cluster.targets:
        own[target.name] = direct_restart(cluster, target, args.ready_timeout)
        print(f"{target.name}: direct restart-to-ready {own[target.name]:.1f}s", file=sys.stderr)
    change_desired_state(args.inventory)
    t0 = time.monotonic()
    record = run_rollout(
        args.inventory,
        RolloutOptions(ready_timeout_s=args.ready_timeout, drain_timeout_s=60),
        lambda message: print(message, file=sys.stderr),
        lambda _question: True,
    )
    wall = time.monotonic() - t0
    if record.result != "succeeded":
        raise SystemExit(f"rollout {record.result}: {record.message}")
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"{'group':<12} {'direct restart-to-ready s':>26} {'in rollout: restart-to-ready s':>31}"
          f" {'in rollout: group total s':>26}")  # fmt: skip
    for group in record.groups:
        print(
            f"{group.name:<12} {own[group.name]:>26.1f} {group.restart_to_ready_s or 0:>31.1f}"
            f" {group.seconds or 0:>26.1f}"
        )
    detect = next(s.seconds for s in record.groups[0].steps if s.name == "detect")
    print(f"change detection (serving.yml --check, all groups): {detect:.1f}s")
    total = sum(own.values())
    print(f"rollout wall time: {wall:.1f}s; sum of direct restart-to-ready: {total:.1f}s")
    print(f"overhead ratio (rollout wall / sum of restart-to-ready): {wall / total:.2f}")


if __name__ == "__main__":
    main()
