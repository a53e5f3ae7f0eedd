"""One loader: `load_inventory` and Ansible see the same variables on every host (issue 15).

Method. Inventories: every example under inventories/examples/, a lab inventory written by
`sglfleet.lab.podman.write_inventory` (what `sglfleet lab up` writes), and the parity-* fixtures
under tests/fixtures/inventories/ (layer precedence, vars-file discovery, group order, vault).
For each, `load_inventory` runs with an empty project root, which leaves out the role-defaults
layer (Ansible's inventory does not show role defaults), and every host's `Host.vars` must equal
that host's `_meta.hostvars` from `ansible-inventory -i <dir>/hosts.yml --list`, run with the
project's ansible.cfg (so the same vars plugins run) and a memory fact cache (so facts cached by
earlier runs stay out). Ignored key: `sglfleet_plan` (the project's vars plugin adds it).
Opaque values stay opaque on both sides: a `!vault` value compares as its ciphertext (Ansible
prints `{"__ansible_vault": ...}`, the loader keeps a `Secret`); a value the loader hides for its
name compares by its text; `!unsafe` compares by its text.

Extra vars (`-e`): `ansible-inventory --list -e @extra.json` on the precedence fixture, against
`load_inventory(extra_vars=...)`; ansible-inventory layers extra vars in the same
`VariableManager.get_vars` a play uses. To check what a play itself sees, a one-task playbook run
with the same `-e` and the fixture's vault password file prints every variable the loader has
(through the json callback); there vaulted values are compared decrypted.

All Ansible processes start at once in one session-scoped fixture (each costs about a second).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sglfleet.inventory import load_inventory
from sglfleet.lab.podman import LabNode, write_inventory
from sglfleet.models import Inventory, Secret

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
FIXTURES = ROOT / "tests" / "fixtures" / "inventories"
PRECEDENCE = FIXTURES / "parity-precedence"
VAULT_PASSWORD_FILE = PRECEDENCE / "vault-password.txt"
# ansible_local: the local facts Ansible still hands out as a variable with inject_facts_as_vars
# off (ansible.cfg), from the fact cache where it holds the host; a fact, not an inventory variable.
IGNORED_KEYS = {"sglfleet_plan", "ansible_local"}
MISSING = "<missing>"
EXTRA_VARS: dict[str, Any] = {
    "parity_all_inline_only": "extra",
    "parity_host_inline_vs_host_file": "extra",
    "parity_extra_only": {"nested": [1, 2]},
    "sglfleet_api_key": "sk-from-extra",
}
DUMP = (
    "{{ dict(parity_names | zip(query('ansible.builtin.vars', *parity_names,"
    " default='" + MISSING + "'))) }}"
)


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    extra_vars: dict[str, Any] | None = None


def _cases(lab_dir: Path) -> list[Case]:
    examples = sorted(p for p in (ROOT / "inventories" / "examples").iterdir() if p.is_dir())
    fixtures = sorted(FIXTURES.glob("parity-*"))
    return [
        *(Case(f"example:{p.name}", p) for p in examples),
        Case("lab", lab_dir),
        *(Case(f"fixture:{p.name}", p) for p in fixtures),
        Case("extra-vars:parity-precedence", PRECEDENCE, EXTRA_VARS),
    ]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_HOME=str(home),
        # Facts cached by earlier runs would show up as host variables.
        ANSIBLE_CACHE_PLUGIN="memory",
    )
    return env


def _write_lab_inventory(base: Path) -> Path:
    nodes = [LabNode(f"lab-{i}", f"sglfleet-lab-{i}", f"10.89.0.{10 + i}") for i in (1, 2, 3)]
    return write_inventory(base, nodes, 1, base / "id_ed25519")


def _loader_value(value: Any) -> Any:
    if isinstance(value, Secret):
        text = value.reveal()
        return ("vault", text) if text.startswith("$ANSIBLE_VAULT") else text
    if isinstance(value, dict):
        return {str(k): _loader_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_loader_value(v) for v in value]
    return value


def _ansible_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ansible_vault"}:
            return ("vault", value["__ansible_vault"])
        if set(value) == {"__ansible_unsafe"}:
            return _ansible_value(value["__ansible_unsafe"])
        return {str(k): _ansible_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ansible_value(v) for v in value]
    return value


def _loader_view(case: Case, empty_root: Path) -> tuple[Inventory, dict[str, dict[str, Any]]]:
    inventory = load_inventory(case.directory, root=empty_root, extra_vars=case.extra_vars)
    view = {
        name: {k: _loader_value(v) for k, v in host.vars.items()}
        for name, host in inventory.hosts.items()
    }
    return inventory, view


def _differences(loader: dict[str, Any], ansible: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(loader) | set(ansible)):
        mine, theirs = loader.get(key, MISSING), ansible.get(key, MISSING)
        if mine != theirs:
            out.append(f"{key}: loader {mine!r} != ansible {theirs!r}")
    return out


@dataclass
class Views:
    cases: list[Case]
    ansible: dict[str, dict[str, dict[str, Any]]]
    play: dict[str, dict[str, Any]]
    play_names: list[str]
    empty_root: Path


@pytest.fixture(scope="session")
def views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Views]:
    work = tmp_path_factory.mktemp("parity")
    empty_root = work / "empty-root"
    empty_root.mkdir()
    env = _env(work / "ansible-home")
    cases = _cases(_write_lab_inventory(work / "lab"))
    extra_file = work / "extra.json"
    extra_file.write_text(json.dumps(EXTRA_VARS), encoding="utf-8")

    # The play dumps every variable the loader has on any host of the precedence fixture.
    _, precedence = _loader_view(Case("play", PRECEDENCE, EXTRA_VARS), empty_root)
    names = sorted({key for host_vars in precedence.values() for key in host_vars})
    playbook = work / "dump.yml"
    play = {
        "name": "Dump what a play sees",
        "hosts": "all",
        "gather_facts": False,
        "vars": {"parity_names": names},
        "tasks": [{"name": "Dump | Show the variables", "ansible.builtin.debug": {"msg": DUMP}}],
    }
    playbook.write_text(yaml.safe_dump([play]), encoding="utf-8")

    processes: dict[str, subprocess.Popen[str]] = {}
    for case in cases:
        argv = [str(BIN / "ansible-inventory"), "-i", str(case.directory / "hosts.yml"), "--list"]
        if case.extra_vars is not None:
            argv += ["-e", f"@{extra_file}"]
        processes[case.name] = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    play_env = dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    play_argv = [
        str(BIN / "ansible-playbook"),
        "-i",
        str(PRECEDENCE / "hosts.yml"),
        "--vault-password-file",
        str(VAULT_PASSWORD_FILE),
        "-e",
        f"@{extra_file}",
        str(playbook),
    ]
    processes["play"] = subprocess.Popen(
        play_argv, cwd=ROOT, env=play_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    outputs = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, (
            f"{name}: {process.args!r}\n{stdout[-2000:]}\n{stderr[-2000:]}"
        )
        outputs[name] = json.loads(stdout)

    ansible = {
        case.name: {
            host: {k: _ansible_value(v) for k, v in host_vars.items() if k not in IGNORED_KEYS}
            for host, host_vars in outputs[case.name]["_meta"]["hostvars"].items()
        }
        for case in cases
    }
    (task,) = outputs["play"]["plays"][0]["tasks"]
    play_view = {host: _ansible_value(result["msg"]) for host, result in task["hosts"].items()}
    yield Views(cases, ansible, play_view, names, empty_root)


def _case_names() -> list[str]:
    return [case.name for case in _cases(Path("lab"))]


@pytest.mark.parametrize("name", _case_names())
def test_every_host_variable_matches_ansible_inventory(views: Views, name: str) -> None:
    case = next(c for c in views.cases if c.name == name)
    _, loader = _loader_view(case, views.empty_root)
    ansible = views.ansible[name]
    assert sorted(loader) == sorted(ansible), "the two readers list different hosts"
    differences = {host: _differences(loader[host], ansible[host]) for host in loader}
    assert not any(differences.values()), json.dumps(differences, indent=1)


def test_the_cases_cover_every_example_and_each_hard_case() -> None:
    names = _case_names()
    examples = [p for p in (ROOT / "inventories" / "examples").iterdir() if p.is_dir()]
    assert len([n for n in names if n.startswith("example:")]) == len(examples) >= 4
    assert {"lab", "fixture:parity-precedence", "fixture:parity-group-order"} <= set(names)
    assert "extra-vars:parity-precedence" in names


def _decrypt(text: str) -> str:
    from ansible.parsing.vault import VaultLib, VaultSecret  # type: ignore[import-untyped]

    password = VAULT_PASSWORD_FILE.read_bytes().strip()
    return str(VaultLib([("default", VaultSecret(password))]).decrypt(text).decode())


def test_a_play_run_with_extra_vars_sees_what_the_loader_reads(views: Views) -> None:
    inventory, loader = _loader_view(Case("play", PRECEDENCE, EXTRA_VARS), views.empty_root)
    assert sorted(views.play) == sorted(loader)
    differences = {}
    for host, seen in views.play.items():
        expected = {}
        for key in views.play_names:
            value = loader[host].get(key, MISSING)
            if isinstance(value, tuple) and value[0] == "vault":
                value = _decrypt(value[1])
            expected[key] = value
        differences[host] = _differences(expected, seen)
    assert not any(differences.values()), json.dumps(differences, indent=1)
    # The cluster's own variables get the extra vars too.
    assert inventory.api_key is not None and inventory.api_key.reveal() == "sk-from-extra"
    assert inventory.global_vars["parity_extra_only"] == {"nested": [1, 2]}


def test_the_fixtures_pin_the_winning_layers(views: Views) -> None:
    """The fixtures prove something only if each case's winner is the one Ansible picks."""
    n1 = views.ansible["fixture:parity-precedence"]["n1"]
    assert n1["parity_group_inline_vs_all_file"] == "all-file-10"
    assert n1["parity_host_inline_order"] == "under-sglfleet-gpu-nodes"
    assert n1["parity_repeated_group"] == "pool-a-second"
    assert n1["parity_files_in_order"] == "all-sub-30"
    assert n1["parity_nested"] == {"replaced": "host-file"}
    assert n1["parity_vaulted"][0] == "vault"
    standalone = views.ansible["fixture:parity-precedence"]["standalone"]
    assert standalone["parity_ungrouped_file"] == "ungrouped-file"
    ordered = views.ansible["fixture:parity-group-order"]["n1"]
    assert ordered["parity_sibling"] == "beta"  # inline priority 10
    assert ordered["parity_sibling_without_priority"] == "zeta"  # name order
    assert ordered["parity_depth"] == "deep"  # depth before priority
    assert ordered["ansible_group_priority"] == 50  # only a variable when set in a file
    assert "ansible_group_priority" not in views.ansible["fixture:parity-group-order"]["n2"]
    extra = views.ansible["extra-vars:parity-precedence"]["n1"]
    assert extra["parity_host_inline_vs_host_file"] == "extra"
    assert views.play["n1"]["parity_vaulted"] == "decrypted-by-both"
