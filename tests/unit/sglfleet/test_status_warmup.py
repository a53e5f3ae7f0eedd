"""`sglfleet status` warm-up: unit start to SGLang's first "ready" line, from the status probe."""

from __future__ import annotations

import yaml

from sglfleet.status import READY_LINE, warmup_seconds
from sglfleet.ui.status import format_warmup

# What playbooks/status.yml's probe prints on rank 0: systemctl show -P ExecMainStartTimestamp
# --timestamp=unix, then the first ready line of journalctl -o short-unix since then.
PROBE_READY = (
    "start @1764489600\n"
    "1764490412.123456 h200-a python[4242]: [2026-11-30 08:13:32] The server is fired up and "
    "ready to roll!\n"
)


def test_warmup_is_start_to_first_ready_line() -> None:
    assert warmup_seconds(PROBE_READY) == {"seconds": 812.1, "warming": False}
    assert format_warmup(warmup_seconds(PROBE_READY)) == "13m32s"


def test_a_unit_still_compiling_shows_time_so_far() -> None:
    warming = warmup_seconds("start @1764489600\n", now=1764489645.0)
    assert warming == {"seconds": 45.0, "warming": True}
    assert format_warmup(warming) == "warming, 45s so far"


def test_no_probe_or_a_unit_that_never_started() -> None:
    assert format_warmup(warmup_seconds("")) == "-"
    assert format_warmup(warmup_seconds("start \n")) == "-"  # systemctl prints nothing
    assert format_warmup(None) == "-"


def test_the_rehearsal_engine_logs_the_same_ready_line() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    assert READY_LINE in (root / "src/sglfleet_rehearsal/engine.py").read_text()
    playbook = (root / "playbooks/status.yml").read_text()
    assert READY_LINE in playbook
    tasks = yaml.safe_load(playbook)[0]["tasks"]
    probe = next(t for t in tasks if "warm-up" in t["name"])
    assert "--timestamp=unix" in probe["ansible.builtin.shell"]["cmd"]
