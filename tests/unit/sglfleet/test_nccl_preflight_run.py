"""`sglfleet preflight --nccl` on a node that was never converged (issue 14 item 5), replayed.

The failure modes seen on the GPU machine: a `when:` that rendered None for a node outside every
serving group (ansible-core 2.19 refuses it: the run exited 1 although the bandwidth passed); a
missing bench interpreter reported as "no result / cause unknown"; a table of OK rows above "see the
failures above" while the failure was only in --json; and a one-GPU node, where an all-reduce has no
traffic to measure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from sglfleet.events.model import Failure
from sglfleet.preflight import nccl as preflight
from sglfleet.preflight import nccl_run
from sglfleet.ui.preflight import render_nccl

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = ROOT / "playbooks" / "nccl_preflight.yml"
BENCH = ROOT / "roles" / "nccl_tuning" / "files" / "sglfleet-allreduce-bench"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
GIB = 1 << 30


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    loader = SourceFileLoader("sglfleet_allreduce_bench_run", str(BENCH))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _play(name_part: str) -> dict[str, Any]:
    plays = yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))
    return next(p for p in plays if name_part in p["name"])


def _render(expression: str, variables: dict[str, Any]) -> Any:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template(expression))


def test_old_condition_rendered_none_replay() -> None:
    old = "{{ __nccl_preflight_launch and (__nccl_preflight_launch.nnodes | int) > 1 }}"
    assert _render(old, {"__nccl_preflight_launch": None}) is None


@pytest.mark.parametrize(
    ("launch", "expected"),
    [(None, False), ({}, False), ({"nnodes": 1}, False), ({"nnodes": 2}, True)],
)
def test_multi_node_condition_is_always_a_boolean(launch: Any, expected: bool) -> None:
    # A node outside every serving group has no launch (None): the old `launch and ...` rendered
    # None and ansible-core 2.19 refused the conditional.
    expression = _play("across each multi-node")["vars"]["__nccl_preflight_multi"]
    value = _render(expression, {"__nccl_preflight_launch": launch})
    assert value is expected


def test_one_gpu_is_not_applicable_without_torch(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = bench.main(
        ["--gpus-per-node", "1", "--worker-python", "/nonexistent/python", "--env-file", "/none"]
    )
    document = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert document["ok"] is True
    assert document["skipped"].startswith("not applicable: one GPU")
    checks, summary = preflight.judge(document, {})
    assert [(c.check, c.status) for c in checks] == [("nccl.run", "skip")]
    assert "single rank" in checks[0].observed
    assert summary["ok"] is True


def test_missing_worker_python_is_named_with_its_fix(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = bench.main(
        ["--gpus-per-node", "2", "--tool", "torch", "--worker-python", "/nonexistent/python",
         "--env-file", "/none"]
    )  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert "/nonexistent/python does not exist" in document["error"]
    (check,) = preflight.judge(document, {})[0]
    assert check.status == "fail"
    assert "/nonexistent/python does not exist" in check.observed
    assert "nccl_tuning_preflight_python" in check.fix
    assert check.cause == "no Python with torch for the bench's workers"


def test_worker_python_without_torch_says_so(bench: ModuleType) -> None:
    # This interpreter has no torch (the development machine): the import error is carried.
    pytest.importorskip("yaml")
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here")
    problem = bench.worker_python_problem(sys.executable)
    assert problem is not None
    assert "cannot import torch" in problem["error"]
    assert "No module named 'torch'" in problem["error"]


def _good_document() -> dict[str, Any]:
    rows = [{"bytes": 4 * GIB, "time_us": 24700.0, "algbw_gbps": 173.4, "busbw_gbps": 346.8}]
    return {
        "ok": True,
        "rows": rows,
        "world_size": 2,
        "tool": "torch.distributed",
        "sglfleet": {"host": "gpu-1", "scope": "node", "gpu_model": "H200-SXM-141GB"},
    }


def test_playbook_failure_is_a_table_row_not_only_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every bandwidth row passes, the playbook still failed: the table must show why.
    from sglfleet.ui import render

    monkeypatch.setattr(render.console, "width", 400)
    message = "Conditional result (None) was derived from value of type 'NoneType'"
    failures = [Failure("gpu-1", "NCCL preflight | Write the group's result", message, False)]
    document = nccl_run.report({"nccl-node-gpu-1": _good_document()}, {}, failures, 2, tmp_path)
    render_nccl(document)
    printed = capsys.readouterr().out
    assert document["failed"] == 1
    assert document["playbook_checks"][0]["check"] == "nccl.playbook"
    assert "NCCL preflight playbook" in printed
    assert "Conditional result (None)" in printed
    assert "see the failures above" not in printed
    assert all(r["ok"] for r in document["results"])


def test_clean_run_has_no_playbook_rows(tmp_path: Path) -> None:
    document = nccl_run.report({"nccl-node-gpu-1": _good_document()}, {}, [], 0, tmp_path)
    assert document["failed"] == 0
    assert document["playbook_checks"] == []


def test_missing_ansible_playbook_is_named(tmp_path: Path) -> None:
    (check,) = nccl_run.playbook_checks([], 127, tmp_path)
    assert "ansible-playbook was not found" in check.observed
    assert "PATH" in check.fix


def _fake_nvidia_smi(folder: Path, gpus: int) -> None:
    script = folder / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f"  *query-gpu=index*) seq 0 {gpus - 1} ;;\n"
        '  *query-gpu=name*) echo "NVIDIA H200" ;;\n'
        "  *) exit 9 ;;\n"
        "esac\n",
        encoding="utf-8",
    )
    script.chmod(0o755)


def _local_node(tmp_path: Path, gpus: int) -> tuple[Path, dict[str, str]]:
    """An inventory of this machine as one GPU node outside any serving group, and the env
    (a stand-in nvidia-smi on PATH) that ansible-playbook runs with."""
    fake = tmp_path / "bin"
    fake.mkdir()
    _fake_nvidia_smi(fake, gpus)
    inventory = tmp_path / "inv"
    inventory.mkdir()
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
        "sglfleet_gpu_count": gpus,
        "sglfleet_gpu_model": "H200-SXM-141GB",
        "nccl_tuning_bench_path": str(tmp_path / "bench"),
        "nccl_tuning_preflight_python": "/nonexistent/python",
    }
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"sglfleet_gpu_nodes": {"hosts": {"gpu-1": host}}}}}),
        encoding="utf-8",
    )
    env = {
        "PATH": f"{fake}:{ANSIBLE_PLAYBOOK.parent}:{os.environ.get('PATH', '')}",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),
    }
    return inventory, env


def _judge_local(document: dict[str, Any], gpus: int) -> None:
    checks, _summary = preflight.judge(document, {})
    if gpus == 1:
        assert [(c.check, c.status) for c in checks] == [("nccl.run", "skip")]
    else:
        (check,) = checks
        assert check.status == "fail"
        assert "/nonexistent/python does not exist" in check.observed
        assert "nccl_tuning_preflight_python" in check.fix


@pytest.mark.skipif(os.geteuid() != 0, reason="the bench is installed root-owned (run as root)")
@pytest.mark.parametrize("gpus", [1, 2])
def test_playbook_on_a_node_outside_any_serving_group(tmp_path: Path, gpus: int) -> None:
    """The real playbook run directly against a local node never converged: exit 0, and with an
    output folder given, a result file that says why."""
    inventory, node_env = _local_node(tmp_path, gpus)
    out = tmp_path / "out"
    env = {
        **os.environ,
        **node_env,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_FILTER_PLUGINS": str(ROOT / "plugins" / "filter"),
    }
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory / "hosts.yml"), str(PLAYBOOK),
         "-e", f"sglfleet_preflight_out={out}"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    _judge_local(json.loads((out / "nccl-node-gpu-1.json").read_text(encoding="utf-8")), gpus)


@pytest.mark.skipif(os.geteuid() != 0, reason="the bench is installed root-owned (run as root)")
def test_sglfleet_reads_the_results_from_the_runs_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sglfleet preflight --nccl`'s path: no folder, the results come back in the run's events."""
    inventory, node_env = _local_node(tmp_path, 2)
    for key, value in node_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SGLFLEET_HOME", str(tmp_path / "home"))
    document = nccl_run.nccl_report(inventory, limit=None)
    assert document["playbook_rc"] == 0, document
    (result,) = document["results"]
    assert result["file"] == "nccl-node-gpu-1"
    assert not list(tmp_path.glob("**/nccl-node-gpu-1.json"))  # nothing written on the controller
    runs = list((tmp_path / "home" / "runs").iterdir())
    events = "".join(p.read_text() for p in runs[0].rglob("job_events/*.json"))
    assert "/nonexistent/python does not exist" in events
