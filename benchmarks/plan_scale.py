"""How `sglfleet plan` grows with the fleet: generated inventories of 10, 100 and 1,000 nodes.

Each inventory is 8xH100 nodes in two-node TP16 groups of DeepSeek-R1 behind one router.
Prints a table (wall time of the whole `sglfleet plan --json` command, and of load+plan
in-process) and, as its last line, the 1,000-node command time in seconds. Target: at most 2 s.

    python benchmarks/plan_scale.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sglfleet.inventory import load_inventory  # noqa: E402
from sglfleet.launch import launch_table  # noqa: E402
from sglfleet.topology import plan  # noqa: E402


def write_inventory(base: Path, nodes: int) -> Path:
    hosts = {
        f"gpu-{i:04d}": {
            "ansible_host": f"10.{i // 250}.{i % 250}.10",
            "sglfleet_fabric_address": f"10.{100 + i // 250}.{i % 250}.10",
            "sglfleet_fabric_interface": "ibp24s0",
            "sglfleet_rdma_hcas": [f"mlx5_{k}" for k in range(8)],
            "sglfleet_gpu_count": 8,
            "sglfleet_gpu_model": "H100-SXM5-80GB",
        }
        for i in range(nodes)
    }
    names = list(hosts)
    groups = [
        {
            "name": f"r1-{g:04d}",
            "model": "deepseek-r1",
            "hosts": names[g * 2 : g * 2 + 2],
            "tp": 16,
            "mem_fraction_static": 0.88,
        }
        for g in range(nodes // 2)
    ]
    inv = base / f"fleet-{nodes}"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "sglfleet_gpu_nodes": {"hosts": hosts},
                        "sglfleet_routers": {"hosts": {names[0]: None}},
                    }
                }
            },
            sort_keys=False,
        )
    )
    (inv / "group_vars" / "all" / "serving.yml").write_text(
        yaml.safe_dump(
            {
                "sglfleet_models": {
                    "deepseek-r1": {
                        "repo_id": "deepseek-ai/DeepSeek-R1",
                        "revision": "56d4cbbb4d29f4355bab4b9a39ccb717a14ad5ad",
                        "weights_gb": 690,
                    }
                },
                "sglfleet_serving_groups": groups,
                "sglfleet_router": {"host": names[0], "port": 8000},
            },
            sort_keys=False,
        )
    )
    return inv


def time_cli(inv: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sglfleet", "plan", "--json", "-i", str(inv)],
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.decode()[-2000:])
    return elapsed


def time_in_process(inv: Path) -> tuple[float, float]:
    start = time.perf_counter()
    inventory = load_inventory(inv)
    cluster = plan(inventory)
    planned = time.perf_counter() - start
    launch_table(inventory, cluster)
    return planned, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best is kept")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in (10, 100, 1000):
            inv = write_inventory(Path(tmp), nodes)
            cli = min(time_cli(inv) for _ in range(args.repeat))
            inproc = min(time_in_process(inv) for _ in range(args.repeat))
            rows.append((nodes, cli, inproc[0], inproc[1]))
    print(f"{'nodes':>6} {'plan --json (s)':>16} {'load+plan (s)':>14} {'+launch table (s)':>18}")
    for nodes, cli, planned, table in rows:
        print(f"{nodes:>6} {cli:>16.3f} {planned:>14.3f} {table:>18.3f}")
    print(f"plan --json on 1,000 nodes: {rows[-1][1]:.2f} s")


if __name__ == "__main__":
    main()
