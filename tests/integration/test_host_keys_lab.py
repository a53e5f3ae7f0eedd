"""SSH host keys on the lab: `sglfleet lab up` pins each node's keys (read from the container) in
the inventory's known_hosts, every run checks them, and a changed key stops the connection to
that host with its name and the fix, while the other hosts still answer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sglfleet import host_keys
from tests.integration.conftest import Lab, run_cli

pytestmark = pytest.mark.integration


def test_the_lab_pins_its_nodes_keys(lab: Lab) -> None:
    known = host_keys.known_hosts_file(lab.inventory)
    for node in lab.nodes:
        assert host_keys.recorded(known, node["address"]), node["name"]
    doctor = lab.sglfleet("doctor", "-i", str(lab.inventory), "--json", timeout=120)
    items = {i["item"]: i for i in json.loads(doctor.stdout)["items"]}
    assert items["ssh host keys"]["status"] == "ok", items["ssh host keys"]


def test_a_changed_host_key_is_refused_and_named(lab: Lab, tmp_path: Path) -> None:
    known = host_keys.known_hosts_file(lab.inventory)
    pinned = known.read_text()
    victim = next(n for n in lab.nodes if n["name"] == "lab-1")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "imposter")],
        check=True,
    )
    imposter = " ".join((tmp_path / "imposter.pub").read_text().split()[:2])
    try:
        host_keys.replace(known, victim["address"], None, [imposter])
        # A fresh ControlMaster folder: a multiplexed connection opened by an earlier test (ssh's
        # ControlPersist keeps it 120 s) was verified when it opened and would not check again.
        fresh = {**lab.env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp")}
        proc = run_cli(fresh, "status", "-i", str(lab.inventory), "--json", timeout=600)
        assert proc.returncode == 0, proc.stderr
        document = json.loads(proc.stdout)
        (refused,) = document["unreachable"]
        assert refused["host"] == "lab-1"
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused["message"]
        assert f"ssh-keygen -R '{victim['address']}' -f {known}" in refused["fix"]
        others = [n for g in document["groups"] for n in g["nodes"] if n["host"] != "lab-1"]
        assert others and all(n["state"] != "unknown" for n in others)
        assert known.read_text().count(imposter) == 1  # ssh did not overwrite the pinned key
    finally:
        known.write_text(pinned)
    again = lab.sglfleet("status", "-i", str(lab.inventory), "--json", timeout=600)
    assert json.loads(again.stdout)["unreachable"] == []
