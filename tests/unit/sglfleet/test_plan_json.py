"""`sglfleet plan --json` has exactly the documented shape for every example inventory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(p for p in (ROOT / "inventories" / "examples").iterdir() if p.is_dir())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_plan_json_shape(example: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sglfleet", "plan", "-i", str(example), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"SGLFLEET_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert list(document) == ["serving_groups"]
    assert document["serving_groups"]
    for group in document["serving_groups"]:
        assert list(group) == ["name", "model", "nodes"]
        ranks = [node["node_rank"] for node in group["nodes"]]
        assert ranks == list(range(len(ranks)))
        for node in group["nodes"]:
            assert list(node) == ["host", "node_rank", "argv", "server_args", "env", "nccl_env"]
            assert all(isinstance(t, str) for t in node["argv"] + node["server_args"])
            assert all(isinstance(v, str) for v in node["env"].values())
            args = node["server_args"]
            if len(group["nodes"]) > 1:
                assert args[args.index("--nnodes") + 1] == str(len(group["nodes"]))
                assert args[args.index("--node-rank") + 1] == str(node["node_rank"])
                rank0 = group["nodes"][0]["server_args"]
                assert (
                    args[args.index("--dist-init-addr") + 1]
                    == rank0[rank0.index("--dist-init-addr") + 1]
                )


def test_two_node_tp_example_matches_sglang_multinode_launch(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sglfleet",
            "plan",
            "--json",
            "-i",
            str(ROOT / "inventories/examples/deepseek-r1-2x8-h100"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"SGLFLEET_HOME": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (group,) = json.loads(proc.stdout)["serving_groups"]
    for rank, node in enumerate(group["nodes"]):
        args = node["server_args"]
        assert args[args.index("--tp-size") + 1] == "16"
        assert args[args.index("--node-rank") + 1] == str(rank)
        assert args[args.index("--dist-init-addr") + 1] == "10.20.0.11:20000"
        assert node["nccl_env"]["GLOO_SOCKET_IFNAME"] == "ibp24s0"
        assert "," not in node["nccl_env"]["GLOO_SOCKET_IFNAME"]
        assert node["nccl_env"]["NCCL_IB_HCA"].startswith("=mlx5_0")


def test_secrets_are_redacted(tmp_path: Path) -> None:
    inventory = tmp_path / "inv"
    source = ROOT / "inventories/examples/deepseek-r1-1x8-h200"
    subprocess.run(["cp", "-r", str(source), str(inventory)], check=True)
    (inventory / "group_vars/all/secrets.yml").write_text("sglfleet_api_key: canary-4242-secret\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sglfleet", "plan", "--json", "-i", str(inventory)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"SGLFLEET_HOME": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "canary-4242-secret" not in proc.stdout + proc.stderr
    args = json.loads(proc.stdout)["serving_groups"][0]["nodes"][0]["server_args"]
    assert args[args.index("--api-key") + 1] == "<redacted>"
