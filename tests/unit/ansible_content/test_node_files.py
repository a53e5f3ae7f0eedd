"""One read per role: sglfleet_node_files, and the template/copy/file actions that answer from it.

A role reads the state of its files once (`sglfleet_node_files`, registered as
`__<role>_node_files`); `sglfleet_template`, `sglfleet_copy` and `sglfleet_file` then answer
"no change" without a remote run where that read shows the desired state, and run the builtin code
path otherwise. These tests run the real plugins with ansible-playbook on a local connection
against files in a temporary folder: unchanged files are answered, every kind of drift (content,
mode, owner, a link, a folder's mode) is found and fixed by the builtin path, check mode changes
nothing, and a read from an earlier play is never used.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent

TEMPLATE = "{{ ansible_managed | comment }}\nvalue={{ demo_value }}\n"
WRITE_TASKS: list[dict[str, Any]] = [
    {
        "name": "Folder",
        "sglfleet_file": {"path": "{{ demo_dir }}/conf.d", "state": "directory", "mode": "0750"},
    },
    {
        "name": "Template",
        "sglfleet_template": {
            "src": "a.conf.j2",
            "dest": "{{ demo_dir }}/conf.d/a.conf",
            "mode": "0640",
            "owner": "{{ demo_owner }}",
            "backup": True,
        },
    },
    {
        "name": "Copy",
        "sglfleet_copy": {
            "content": "hello\n",
            "dest": "{{ demo_dir }}/conf.d/b.conf",
            "mode": "0644",
        },
    },
    {"name": "Absent", "sglfleet_file": {"path": "{{ demo_dir }}/conf.d/gone", "state": "absent"}},
]
ACTIONS = [task["name"] for task in WRITE_TASKS]


def _role(tmp_path: Path) -> Path:
    role = tmp_path / "roles" / "demo"
    (role / "templates").mkdir(parents=True)
    (role / "tasks").mkdir()
    (role / "templates" / "a.conf.j2").write_text(TEMPLATE)
    read = {
        "name": "Read the role's files on the node",
        "sglfleet_node_files": {"dirs": ["{{ demo_dir }}", "{{ demo_dir }}/conf.d"]},
        "register": "__demo_node_files",
    }
    (role / "tasks" / "main.yml").write_text(
        yaml.safe_dump([read, {"name": "Write", "ansible.builtin.import_tasks": "write.yml"}])
    )
    (role / "tasks" / "write.yml").write_text(yaml.safe_dump(WRITE_TASKS))
    return role


def _play(tmp_path: Path, plays: list[dict[str, Any]]) -> Path:
    path = tmp_path / "play.yml"
    for play in plays:
        play.setdefault("hosts", "localhost")
        play.setdefault("gather_facts", False)
        play.setdefault(
            "vars", {"demo_dir": str(tmp_path / "out"), "demo_value": 1, "demo_owner": "root"}
        )
    path.write_text(yaml.safe_dump(plays))
    return path


def _run(
    tmp_path: Path, playbook: Path, *extra: str, env_extra: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The task results of a run, in order: {name, changed, answered}."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_HOME=str(ROOT / ".cache" / "ansible"),
        ANSIBLE_ROLES_PATH=str(tmp_path / "roles"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_VARS_ENABLED="host_group_vars",
        **(env_extra or {}),
    )
    proc = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(playbook),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    results = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"]["localhost"]
            results.append(
                {
                    "name": task["task"]["name"].split(" : ")[-1],
                    "changed": bool(result.get("changed")),
                    "answered": bool(result.get("sglfleet_answered")),
                }
            )
    return results


def _by_name(results: list[dict[str, Any]], key: str) -> dict[str, bool]:
    return {r["name"]: r[key] for r in results if r["name"] in ACTIONS}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    _role(tmp_path)
    return _play(tmp_path, [{"roles": ["demo"]}])


def test_unchanged_files_are_answered_from_the_read(tmp_path: Path, demo: Path) -> None:
    first = _run(tmp_path, demo)
    assert _by_name(first, "changed") == {
        "Folder": True,
        "Template": True,
        "Copy": True,
        "Absent": False,
    }
    assert not any(_by_name(first, "answered")[name] for name in ("Folder", "Template", "Copy"))
    second = _run(tmp_path, demo)
    assert _by_name(second, "changed") == dict.fromkeys(ACTIONS, False)
    assert _by_name(second, "answered") == dict.fromkeys(ACTIONS, True)


def test_every_drift_is_found_and_fixed_by_the_builtin_path(tmp_path: Path, demo: Path) -> None:
    _run(tmp_path, demo)
    out = tmp_path / "out" / "conf.d"
    (out / "a.conf").write_text("edited by hand\n")
    (out / "b.conf").chmod(0o600)
    os.chmod(out, 0o755)
    (out / "gone").write_text("left over\n")
    fixed = _run(tmp_path, demo)
    assert _by_name(fixed, "changed") == dict.fromkeys(ACTIONS, True)
    assert _by_name(fixed, "answered") == dict.fromkeys(ACTIONS, False)
    assert (out / "a.conf").read_text().endswith("value=1\n")
    assert oct((out / "b.conf").stat().st_mode & 0o777) == "0o644"
    assert oct(out.stat().st_mode & 0o777) == "0o750"
    assert not (out / "gone").exists()
    # The template's backup of the hand-edited file is kept.
    assert [p.read_text() for p in out.glob("a.conf.*~")] == ["edited by hand\n"]
    assert _by_name(_run(tmp_path, demo), "answered") == dict.fromkeys(ACTIONS, True)


def test_an_owner_and_a_link_are_not_answered(tmp_path: Path, demo: Path) -> None:
    _run(tmp_path, demo)
    out = tmp_path / "out" / "conf.d"
    # As root (CI, the lab set-up): hand the file to another user.
    os.chown(out / "a.conf", pwd.getpwnam("nobody").pw_uid, -1)
    (out / "b.conf").unlink()
    (tmp_path / "elsewhere").write_text("hello\n")
    (out / "b.conf").symlink_to(tmp_path / "elsewhere")
    results = _run(tmp_path, demo)
    assert _by_name(results, "answered")["Template"] is False
    assert _by_name(results, "changed")["Template"] is True
    assert (out / "a.conf").stat().st_uid == 0
    assert _by_name(results, "answered")["Copy"] is False


def test_check_mode_reports_drift_and_changes_nothing(tmp_path: Path, demo: Path) -> None:
    _run(tmp_path, demo)
    out = tmp_path / "out" / "conf.d"
    (out / "a.conf").write_text("edited by hand\n")
    checked = _run(tmp_path, demo, "--check", "--diff")
    assert _by_name(checked, "changed")["Template"] is True
    assert (out / "a.conf").read_text() == "edited by hand\n"
    # After the template reported a change, the read may be stale: the builtin path decides.
    assert _by_name(checked, "answered") == {
        "Folder": True,
        "Template": False,
        "Copy": False,
        "Absent": False,
    }
    assert _by_name(checked, "changed") == {
        "Folder": False,
        "Template": True,
        "Copy": False,
        "Absent": False,
    }


def test_nothing_is_answered_without_the_change_counting_callback(
    tmp_path: Path, demo: Path
) -> None:
    _run(tmp_path, demo)
    results = _run(tmp_path, demo, env_extra={"ANSIBLE_CALLBACKS_ENABLED": "sglfleet_gc"})
    assert _by_name(results, "changed") == dict.fromkeys(ACTIONS, False)
    assert _by_name(results, "answered") == dict.fromkeys(ACTIONS, False)


def test_a_read_from_an_earlier_play_is_never_used(tmp_path: Path) -> None:
    _role(tmp_path)
    drift = {
        "name": "Drift",
        "ansible.builtin.copy": {
            "content": "edited\n",
            "dest": "{{ demo_dir }}/conf.d/a.conf",
            "mode": "0640",
        },
    }
    playbook = _play(
        tmp_path,
        [
            {"roles": ["demo"]},
            {
                "tasks": [
                    drift,
                    {
                        "name": "Write without a read",
                        "ansible.builtin.import_role": {"name": "demo", "tasks_from": "write.yml"},
                    },
                ]
            },
        ],
    )
    _run(tmp_path, playbook)
    results = _run(tmp_path, playbook)
    template = [r for r in results if r["name"] == "Template"][-1]
    assert template == {"name": "Template", "changed": True, "answered": False}
    assert (tmp_path / "out" / "conf.d" / "a.conf").read_text().endswith("value=1\n")


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("wanted", "current", "expected"),
    [
        ("0644", "0644", True),
        ("644", "0644", True),
        (0o644, "0644", True),
        ("0640", "0644", False),
        ("1777", "1777", True),
        ("u=rw,g=r,o=r", "0644", False),
        (None, "0600", True),
        ("0644", None, False),
    ],
)
def test_modes_are_answered_only_when_octal_and_equal(
    wanted: Any, current: Any, expected: bool
) -> None:
    copy = _load(ROOT / "plugins" / "action" / "sglfleet_copy.py")
    assert copy.mode_matches(wanted, current) is expected


def test_file_arguments_the_read_cannot_answer_go_to_the_module() -> None:
    copy = _load(ROOT / "plugins" / "action" / "sglfleet_copy.py")
    state = {"mode": "0644", "owner": "root", "group": "root", "uid": 0, "gid": 0}
    assert copy.attributes_match({"mode": "0644", "owner": "0", "group": "root"}, state)
    assert not copy.attributes_match({"mode": "0644", "attributes": "+i"}, state)
    assert not copy.attributes_match({"mode": "0644", "setype": "etc_t"}, state)
    assert not copy.attributes_match({"recurse": True}, state)
    assert not copy.attributes_match({"owner": "nobody"}, state)


def test_every_role_that_uses_the_actions_reads_its_files_first() -> None:
    actions = ("sglfleet_template:", "sglfleet_copy:", "sglfleet_file:")
    for role in sorted((ROOT / "roles").iterdir()):
        files = list((role / "tasks").glob("*.yml"))
        if not any(a in f.read_text() for f in files for a in actions):
            continue
        main: list[dict[str, Any]] = yaml.safe_load((role / "tasks" / "main.yml").read_text())
        if any("block" in task for task in main):  # a role gated once: its tasks sit in one block
            (gated,) = [task for task in main if "block" in task]
            main = main[: main.index(gated)] + gated["block"]
        reads = [i for i, task in enumerate(main) if "sglfleet_node_files" in task]
        assert len(reads) == 1, f"{role.name}: one sglfleet_node_files read in tasks/main.yml"
        read = main[reads[0]]
        assert read["register"] == f"__{role.name}_node_files", role.name
        assert reads[0] <= 1, f"{role.name}: the read comes before the role writes anything"


# A stand-in for systemctl on this machine (no systemd here; the lab's nodes run the real one):
# each unit's state is two files, and every call is logged.
FAKE_SYSTEMCTL = r"""#!/bin/sh
dir="$SGLFLEET_FAKE_SYSTEMD"
echo "$*" >> "$dir/calls"
[ "$1" = "--no-pager" ] && shift
verb="$1"; shift
[ "$1" = "-l" ] && shift
unit="$1"
active=$(cat "$dir/$unit.active" 2>/dev/null || echo inactive)
enabled=$(cat "$dir/$unit.enabled" 2>/dev/null || echo disabled)
case "$verb" in
  show)
    if [ -e "$dir/$unit.active" ]; then load=loaded; else load=not-found; fi
    printf 'Id=%s\nLoadState=%s\nActiveState=%s\nDescription={ demo\n' "$unit" "$load" "$active"
    printf 'ExecStart={ path=/bin/true ; argv[]=/bin/true ;\n  status=0/0 }\nUnitFileState=%s\n' \
      "$enabled";;
  is-enabled) echo "$enabled"; [ "$enabled" = enabled ] || exit 1;;
  enable) echo enabled > "$dir/$unit.enabled";;
  disable) echo disabled > "$dir/$unit.enabled";;
  start|restart|reload) echo active > "$dir/$unit.active";;
  stop) echo inactive > "$dir/$unit.active";;
  daemon-reload) ;;
  *) echo "fake systemctl: $verb" >&2; exit 1;;
esac
"""
UNIT_TASKS: list[dict[str, Any]] = [
    {
        "name": "Touch",
        "ansible.builtin.command": "true",
        "changed_when": True,
        "when": "demo_touch | default(false) | bool",
    },
    {"name": "Enable", "sglfleet_systemd": {"name": "demo.service", "enabled": True}},
    {
        "name": "Start",
        "sglfleet_systemd": {"name": "demo.service", "state": "started"},
        "register": "__demo_started",
    },
    {
        "name": "Both",
        "sglfleet_systemd": {
            "name": "demo.service",
            "enabled": True,
            "state": "{{ 'restarted' if demo_restart | default(false) | bool else 'started' }}",
            "daemon_reload": "{{ demo_restart | default(false) | bool }}",
        },
    },
    {
        "name": "Status",
        "ansible.builtin.assert": {
            "that": ["__demo_started.status.Id == 'demo.service'"],
        },
    },
]
UNIT_ACTIONS = ["Enable", "Start", "Both"]


@pytest.fixture
def units(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    role = tmp_path / "roles" / "svc" / "tasks"
    role.mkdir(parents=True)
    read = {
        "name": "Read the role's files and units on the node",
        "sglfleet_node_files": {"units": ["demo.service"]},
        "register": "__svc_node_files",
    }
    (role / "main.yml").write_text(yaml.safe_dump([read, *UNIT_TASKS]))
    state = tmp_path / "systemd"
    state.mkdir()
    (state / "demo.service.active").write_text("inactive\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SGLFLEET_FAKE_SYSTEMD": str(state),
    }
    return _play(tmp_path, [{"roles": ["svc"]}]), env


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "systemd" / "calls"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return calls


def _units_by_name(results: list[dict[str, Any]], key: str) -> dict[str, bool]:
    return {r["name"]: r[key] for r in results if r["name"] in UNIT_ACTIONS}


def test_running_enabled_units_are_answered_from_the_read(
    tmp_path: Path, units: tuple[Path, dict[str, str]]
) -> None:
    playbook, env = units
    first = _run(tmp_path, playbook, env_extra=env)
    assert _units_by_name(first, "changed") == {"Enable": True, "Start": True, "Both": False}
    assert _units_by_name(first, "answered") == dict.fromkeys(UNIT_ACTIONS, False)
    assert {"enable demo.service", "start demo.service"} <= set(_calls(tmp_path))
    second = _run(tmp_path, playbook, env_extra=env)
    assert _units_by_name(second, "changed") == dict.fromkeys(UNIT_ACTIONS, False)
    assert _units_by_name(second, "answered") == dict.fromkeys(UNIT_ACTIONS, True)
    # One read (show, is-enabled) and no other systemctl run.
    assert _calls(tmp_path) == ["show demo.service", "is-enabled -l demo.service"]
    checked = _run(tmp_path, playbook, "--check", "--diff", env_extra=env)
    assert _units_by_name(checked, "answered") == dict.fromkeys(UNIT_ACTIONS, True)


def test_a_stopped_or_disabled_unit_goes_to_the_module(
    tmp_path: Path, units: tuple[Path, dict[str, str]]
) -> None:
    playbook, env = units
    _run(tmp_path, playbook, env_extra=env)
    (tmp_path / "systemd" / "demo.service.active").write_text("inactive\n")
    (tmp_path / "systemd" / "demo.service.enabled").write_text("disabled\n")
    _calls(tmp_path)
    results = _run(tmp_path, playbook, env_extra=env)
    assert _units_by_name(results, "answered") == dict.fromkeys(UNIT_ACTIONS, False)
    assert _units_by_name(results, "changed") == {"Enable": True, "Start": True, "Both": False}
    assert {"enable demo.service", "start demo.service"} <= set(_calls(tmp_path))
    assert (tmp_path / "systemd" / "demo.service.active").read_text().strip() == "active"


def test_a_change_since_the_read_and_a_restart_go_to_the_module(
    tmp_path: Path, units: tuple[Path, dict[str, str]]
) -> None:
    playbook, env = units
    _run(tmp_path, playbook, env_extra=env)
    touched = _run(tmp_path, playbook, "-e", "demo_touch=true", env_extra=env)
    assert _units_by_name(touched, "answered") == dict.fromkeys(UNIT_ACTIONS, False)
    assert _units_by_name(touched, "changed") == dict.fromkeys(UNIT_ACTIONS, False)
    _calls(tmp_path)
    restarted = _run(tmp_path, playbook, "-e", "demo_restart=true", env_extra=env)
    assert _units_by_name(restarted, "answered") == {"Enable": True, "Start": True, "Both": False}
    assert _units_by_name(restarted, "changed")["Both"] is True
    assert {"daemon-reload", "restart demo.service"} <= set(_calls(tmp_path))


@pytest.mark.parametrize(
    ("args", "recorded", "answered"),
    [
        ({"name": "a.service", "enabled": True, "state": "started"}, {}, True),
        ({"name": "a.service", "enabled": "yes"}, {}, True),
        ({"name": "a.service", "state": "started", "daemon_reload": False}, {}, True),
        ({"name": "a.service", "state": "started", "daemon_reload": "False"}, {}, True),
        ({"name": "a.service", "state": "started", "daemon_reload": True}, {}, False),
        ({"name": "a.service", "state": "restarted"}, {}, False),
        ({"name": "a.service", "state": "reloaded"}, {}, False),
        ({"name": "a.service", "state": "stopped"}, {}, False),
        ({"name": "a.service", "enabled": False}, {}, False),
        ({"name": "a.service", "masked": False, "state": "started"}, {}, False),
        ({"name": "a.service", "scope": "user", "state": "started"}, {}, False),
        ({"name": "a.service"}, {}, True),
        ({"name": "a.service"}, {"LoadState": "not-found", "ActiveState": "inactive"}, True),
        ({"name": "b.service", "state": "started"}, {}, False),
        ({"name": "a.service", "state": "started"}, {"ActiveState": "failed"}, False),
        ({"name": "a.service", "state": "started"}, {"ActiveState": "activating"}, True),
        ({"name": "a.service", "state": "started"}, {"LoadState": "not-found"}, False),
        ({"name": "a.service", "state": "started"}, {"LoadError": "bad"}, False),
        ({"name": "a.service", "enabled": True}, {"enabled": "enabled-runtime"}, False),
        ({"name": "a.service", "enabled": True}, {"enabled": "indirect"}, False),
        ({"name": "a.service", "enabled": True}, {"enabled": "static"}, True),
        ({"name": "a.service", "enabled": True}, {"enabled_rc": 1}, False),
    ],
)
def test_systemd_arguments_the_read_cannot_answer_go_to_the_module(
    args: dict[str, Any], recorded: dict[str, Any], answered: bool
) -> None:
    systemd = _load(ROOT / "plugins" / "action" / "sglfleet_systemd.py")
    status = {"LoadState": "loaded", "ActiveState": "active"}
    status.update({k: v for k, v in recorded.items() if k[0].isupper()})
    unit = {"show_rc": 0, "status": status, "enabled_rc": 0, "enabled": "enabled"}
    unit.update({k: v for k, v in recorded.items() if k[0].islower()})
    result = systemd.answer(args, {"a.service": unit})
    assert (result is not None) is answered
    if result is not None:
        assert result["changed"] is False and result["status"] is status


def test_the_unit_read_parses_show_as_the_builtin_module_does() -> None:
    module = _load(ROOT / "plugins" / "modules" / "sglfleet_node_files.py")
    text = (
        "Id=a.service\nDescription={ not a block\nExecStart={ path=/bin/x ; argv[]=/bin/x ;\n"
        "  status=0/0 }\nActiveState=active\n"
    )
    assert module.parse_show(text) == {
        "Id": "a.service",
        "Description": "{ not a block",
        "ExecStart": "{ path=/bin/x ; argv[]=/bin/x ;\n  status=0/0 }",
        "ActiveState": "active",
    }
