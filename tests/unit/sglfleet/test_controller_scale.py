"""The pure parts of benchmarks/controller_scale.py and its replay plugins."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench = _load("controller_scale", ROOT / "benchmarks" / "controller_scale.py")
keys = _load("replay_keys", ROOT / "benchmarks" / "plugins" / "replay_keys.py")


def test_recap_lines_are_parsed_per_host() -> None:
    output = (
        "PLAY RECAP *****\n"
        "lab-1                      : ok=201  changed=0    unreachable=0    failed=0    "
        "skipped=95   rescued=0    ignored=0\n"
        "lab-10                     : ok=180  changed=2    unreachable=0    failed=1    "
        "skipped=99   rescued=0    ignored=0\n"
        "TASK [not a recap] : ok=1\n"
    )
    assert bench.parse_recap(output) == {
        "lab-1": {"ok": 201, "changed": 0, "unreachable": 0, "failed": 0, "skipped": 95},
        "lab-10": {"ok": 180, "changed": 2, "unreachable": 0, "failed": 1, "skipped": 99},
    }


def test_redact_hides_secret_values_and_fields_and_drops_invocations() -> None:
    raw = {
        "stdout": "Authorization: Bearer sk-lab-abc",
        "sglfleet_api_key": "anything",
        "invocation": {"module_args": {"content": "sk-lab-abc"}},
        "results": [{"msg": "key sk-lab-abc", "grafana_password": ""}],
        "rc": 0,
    }
    assert bench.redact(raw, {"sk-lab-abc"}) == {
        "stdout": "Authorization: Bearer REDACTED",
        "sglfleet_api_key": "REDACTED",
        "results": [{"msg": "key REDACTED", "grafana_password": ""}],
        "rc": 0,
    }


def test_hosts_stand_in_for_the_lab_host_of_their_kind() -> None:
    hosts = [node.name for node in bench.lab_hosts(5)]
    assert hosts == ["lab-1", "lab-2", "lab-3", "lab-4", "lab-5"]
    assert bench.stands_in_for(hosts) == {
        "lab-1": "lab-1",
        "lab-2": "lab-2",
        "lab-3": "lab-3",
        "lab-4": "lab-3",
        "lab-5": "lab-3",
    }


def test_generated_inventory_is_a_valid_lab_like_sglfleet_inventory(tmp_path: Path) -> None:
    from sglfleet.inventory import load_inventory
    from sglfleet.validate import inventory_checks

    inv = bench.write_inventory(tmp_path, 12)
    inventory = load_inventory(inv)
    assert inventory_checks(inventory) == []
    assert len(inventory.hosts) == 12
    # Addresses stay unique past 250 hosts.
    addresses = {node.address for node in bench.lab_hosts(1000)}
    assert len(addresses) == 1000


def _task(name: str, action: str, role: str | None, play: str) -> Any:
    role_obj = SimpleNamespace(get_name=lambda include_role_fqcn=False: role) if role else None
    block = SimpleNamespace(_play=SimpleNamespace(get_name=lambda: play), _parent=None)
    return SimpleNamespace(
        _ds={"name": name}, action=action, _role=role_obj, _parent=SimpleNamespace(_parent=block)
    )


def test_task_key_uses_the_name_as_written_and_the_play() -> None:
    task = _task("install | Create {{ x }} venv", "ansible.builtin.command", "sglang", "Serving")
    assert (
        keys.task_key(task)
        == "Serving | sglang | install | Create {{ x }} venv | ansible.builtin.command"
    )


def test_recorded_result_matches_loop_items_by_value_then_falls_back() -> None:
    replay = _load("replay_strategy", ROOT / "benchmarks" / "plugins" / "strategy" / "replay.py")
    recording = {
        "hosts": {
            "lab-3": {
                "k": {"result": {"rc": 0}, "items": []},
                "loop": {
                    "items": [
                        {"item": "lab-1", "skipped": True},
                        {"item": {"port": 1}, "rc": 1},
                        {"item": {"port": 2}, "rc": 2},
                    ]
                },
            }
        }
    }
    find = replay.recorded_result
    assert find(recording, "lab-3", "k", None, False) == {"rc": 0}
    assert find(recording, "lab-3", "loop", {"port": 2}, True)["rc"] == 2
    # An item naming another host: the first item that ran stands in.
    assert find(recording, "lab-3", "loop", "lab-999", True)["rc"] == 1
    assert find(recording, "lab-3", "missing", None, False) is None
    assert find(recording, "lab-9", "k", None, False) is None
    cleaned = replay._clean(
        {"item": 1, "ansible_loop_var": "item", "_ansible_item_label": 1, "rc": 0}
    )
    assert cleaned == {"rc": 0}


def test_fixture_is_redacted_and_covers_every_host_kind() -> None:
    data = json.loads(bench.FIXTURE.read_text())
    assert set(data["hosts"]) == {"lab-1", "lab-2", "lab-3"}
    assert data["recorded"]["changed"] == 0
    assert "sk-lab-" not in bench.FIXTURE.read_text()


def test_a_task_moved_since_the_recording_replays_its_recorded_result() -> None:
    replay = _load("replay_strategy", ROOT / "benchmarks" / "plugins" / "strategy" / "replay.py")
    recorded = {"old": {"result": {"matched": 2}}}
    recording: dict[str, Any] = {"hosts": {"lab-1": recorded, "lab-2": {}}}
    replay.apply_renames(recording, {"new": "old", "other": "absent"})
    assert recording["hosts"]["lab-1"]["new"] == {"result": {"matched": 2}}
    assert recording["hosts"]["lab-2"] == {}
    assert "other" not in recording["hosts"]["lab-1"]
    # Every renamed key names a task the fixture holds, on every host.
    renamed = json.loads(bench.RENAMED.read_text())["renamed"]
    data = json.loads(bench.FIXTURE.read_text())
    for old in renamed.values():
        assert all(old in tasks for tasks in data["hosts"].values()), old


def test_a_sample_keeps_every_kind_of_host_and_the_router() -> None:
    assert bench.sample_hosts(1000, 4) == ["lab-1", "lab-2", "lab-3", "lab-1000"]
    assert bench.sample_hosts(3, 10) == ["lab-1", "lab-2", "lab-3"]
    # The router is the inventory's last host, as the lab writes it.
    inventory, _ = bench.lab_inventory_vars(bench.lab_hosts(6), 1)
    assert list(inventory["all"]["children"]["sglfleet_routers"]["hosts"]) == ["lab-6"]
