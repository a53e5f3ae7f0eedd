"""Run rotation keeps the newest runs and every run a rollout record points to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sglfleet.runner import ansible


def test_rotation_keeps_the_logs_a_rollout_record_points_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SGLFLEET_HOME", str(tmp_path))
    runs = tmp_path / "runs"
    runs.mkdir()
    names = [f"20260101T0000{i:02d}-site-{i}" for i in range(ansible.KEEP_RUNS + 5)]
    for name in names:
        (runs / name).mkdir()
    (tmp_path / "rollouts").mkdir()
    pointed = names[1]
    record = {"groups": [{"steps": [{"name": "apply", "message": f"log {runs / pointed}"}]}]}
    (tmp_path / "rollouts" / "20260101T000001-abc.json").write_text(json.dumps(record))

    new = ansible._workspace("site.yml")

    left = sorted(p.name for p in runs.iterdir())
    assert new.name in left
    assert pointed in left  # old enough to go, but a rollout record points to it
    assert names[0] not in left and names[2] not in left
    assert len(left) == ansible.KEEP_RUNS + 1
