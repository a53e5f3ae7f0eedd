"""Run a playbook through ansible-runner, streaming typed events to a callback."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner

from sglfleet import host_keys
from sglfleet.errors import InventoryError, Problem, SglfleetError
from sglfleet.events import Event, RunFinished, RunState, parse_event, reduce
from sglfleet.inventory import load_inventory
from sglfleet.models import REDACTED
from sglfleet.paths import project_root, sglfleet_home

# What follows a run live: called with each event and the state it leads to.
EventHandler = Callable[[Event, RunState], None]

# Runs kept under $SGLFLEET_HOME/runs, newest first, besides those a rollout record points to.
KEEP_RUNS = 50


@dataclass(frozen=True)
class RunResult:
    rc: int
    status: str
    state: RunState
    artifacts: Path
    # When the run failed before any task: the last lines Ansible (or ansible-runner) printed.
    early_output: str = ""
    # Where the inventory's SSH host keys are pinned (sglfleet.host_keys).
    known_hosts: Path | None = None

    @property
    def failed_before_any_task(self) -> bool:
        return self.rc != 0 and self.state.tasks_seen == 0


def ansible_bin_dir() -> Path:
    """Where the Ansible executables of the interpreter running sglfleet are (its venv's bin).

    Not resolved: a venv's python is a link to the base interpreter, and the executables sit
    beside the link. pipx, `pip install` into any venv, `python -m sglfleet` and an absolute path
    to the entry point all run with this interpreter, whether or not its folder is on PATH.
    """
    return Path(sys.executable).parent


def _run_path() -> str:
    """PATH for Ansible's run: the interpreter's own bin first, then the caller's PATH."""
    bin_dir = ansible_bin_dir()
    if not (bin_dir / "ansible-playbook").is_file() and shutil.which("ansible-playbook") is None:
        raise SglfleetError(
            f"ansible-playbook is not installed beside {sys.executable} nor on PATH",
            "install sglfleet with its dependencies into one environment (`pipx install .` or "
            "`pip install .` in a venv; ansible-core comes with it), then run that sglfleet",
        )
    return os.pathsep.join([str(bin_dir), os.environ.get("PATH") or os.defpath])


KEY_VARIABLES = ("ansible_ssh_private_key_file", "ansible_private_key_file")


def unreadable_keys(inventory: Path) -> list[Problem]:
    """Hosts whose SSH private key file the controller cannot read: refused before Ansible runs
    (ssh would only warn and then fail authentication on every host)."""
    try:
        inv = load_inventory(inventory)
    except SglfleetError:
        return []  # the inventory's own problems are reported by the command's validation
    problems = []
    for name, host in inv.hosts.items():
        if str(host.vars.get("ansible_connection", "ssh")) not in ("ssh", "smart", "paramiko"):
            continue
        for variable in KEY_VARIABLES:
            value = host.vars.get(variable)
            if not value or "{{" in str(value):
                continue
            path = Path(str(value)).expanduser()
            if not (path.is_file() and os.access(path, os.R_OK)):
                problems.append(
                    Problem(
                        f"SSH private key {path} is not readable here",
                        f"create the key, fix the path, or make it readable by {getpass.getuser()}",
                        host=name,
                        variable=variable,
                    )
                )
    return problems


# A syntax error makes Ansible quote the offending line, which may be a secret written in clear.
_SECRET_VALUE = re.compile(
    r"(?i)\b([\w.-]*(?:key|token|password|passwd|secret)[\w.-]*['\"]?\s*[:=]\s*)(['\"]?)[^\s'\",}]+"
)


def redact_secrets(text: str) -> str:
    """`sglfleet_api_key: sk-1` -> `sglfleet_api_key: <redacted>` (any key/token/password name)."""
    return _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _early_output(workspace: Path, lines: int = 15) -> str:
    """The tail of what the run printed (ansible-runner keeps it as artifacts/<id>/stdout),
    secret-looking values redacted: the CLI prints it."""
    texts = [p.read_text(errors="replace") for p in sorted(workspace.glob("artifacts/*/stdout"))]
    text = _ANSI.sub("", "\n".join(texts))
    tail = [line.rstrip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return redact_secrets("\n".join(tail))


def _workspace(playbook: str) -> Path:
    runs = sglfleet_home() / "runs"
    runs.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    name = Path(playbook).stem
    path = runs / f"{stamp}-{name}-{os.getpid()}"
    path.mkdir(mode=0o700)
    old = sorted(p for p in runs.iterdir() if p.is_dir())
    stale = old[:-KEEP_RUNS]
    kept = _kept_by_rollouts(sglfleet_home() / "rollouts", [p.name for p in stale])
    for run in stale:
        if run.name not in kept:
            shutil.rmtree(run, ignore_errors=True)
    return path


def _kept_by_rollouts(rollouts: Path, names: list[str]) -> set[str]:
    """The runs among `names` whose logs a rollout record points to: kept as long as the record."""
    if not names or not rollouts.is_dir():
        return set()
    kept: set[str] = set()
    for record in rollouts.glob("*.json"):
        text = record.read_text(encoding="utf-8", errors="replace")
        kept.update(name for name in names if f"runs/{name}" in text)
    return kept


def forks_for(hosts: int, cores: int | None = None) -> int:
    """Ansible forks sized to the fleet: one per host and at least 5, up to a cap of 16 per
    controller core (the cap never below ansible.cfg's 50) and 512 at most. Each fork is a Python
    process that mostly waits on SSH, so a controller carries many more of them than it has cores.
    """
    cores = cores or os.cpu_count() or 1
    return min(max(hosts, 5), max(50, 16 * cores), 512)


def _envvars(root: Path, known_hosts: Path) -> dict[str, str]:
    """The environment of ansible-playbook: the project's plugins and roles, sglfleet's PATH,
    the fact cache, and host keys pinned in the inventory's known_hosts."""
    return {
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(root / "roles"),
        "ANSIBLE_FILTER_PLUGINS": str(root / "plugins" / "filter"),
        "ANSIBLE_VARS_PLUGINS": str(root / "plugins" / "vars"),
        "ANSIBLE_ACTION_PLUGINS": str(root / "plugins" / "action"),
        "ANSIBLE_LIBRARY": str(root / "plugins" / "modules"),
        "ANSIBLE_VARS_ENABLED": "host_group_vars,sglfleet_plan",
        # ansible-runner adds its own callback folder to this one.
        "ANSIBLE_CALLBACK_PLUGINS": str(root / "plugins" / "callback"),
        "ANSIBLE_CALLBACKS_ENABLED": "sglfleet_gc,sglfleet_changes",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(sglfleet_home() / "facts"),
        "SGLFLEET_PROJECT": str(root),
        "PATH": _run_path(),
        # Host keys pinned with the inventory: recorded on first contact, verified after. An
        # inventory's own ansible_ssh_common_args replace these (Ansible's precedence).
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_COMMON_ARGS": " ".join(host_keys.ssh_options(known_hosts)),
    }


def run_playbook(
    playbook: str,
    inventory: str | Path,
    *,
    limit: str | None = None,
    tags: str | None = None,
    skip_tags: str | None = None,
    check: bool = False,
    diff: bool = False,
    extravars: dict[str, Any] | None = None,
    forks: int | None = None,
    on_event: EventHandler | None = None,
) -> RunResult:
    """Run `playbook` (relative to the project) against an inventory directory."""
    root = project_root()
    inventory_path = Path(inventory).expanduser().resolve()
    missing_keys = unreadable_keys(inventory_path)
    if missing_keys:
        raise InventoryError(missing_keys, str(inventory_path))
    workspace = _workspace(playbook)
    state = RunState()
    cmdline: list[str] = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")

    def handle(raw: dict[str, Any]) -> bool:
        event = parse_event(raw)
        if event is not None:
            reduce(state, event)
            if on_event is not None:
                on_event(event, state)
        return True

    known_hosts = host_keys.known_hosts_file(inventory_path)
    host_keys.prepare(known_hosts)
    envvars = _envvars(root, known_hosts)
    kwargs: dict[str, Any] = {
        "private_data_dir": str(workspace),
        "project_dir": str(root),
        "playbook": str(root / playbook),
        "inventory": str(inventory_path),
        "envvars": envvars,
        "quiet": True,
        "event_handler": handle,
        "extravars": extravars or {},
        "rotate_artifacts": 1,
        # ansible-runner points the jsonfile fact cache into each run's own (throwaway) artifacts
        # unless given a path; an absolute one is used as is, so facts outlive the run as
        # ansible.cfg intends (gathering = smart, fact_caching_timeout).
        "fact_cache": str(sglfleet_home() / "facts"),
        "fact_cache_type": "jsonfile",
    }
    if limit:
        kwargs["limit"] = limit
    if tags:
        kwargs["tags"] = tags
    if skip_tags:
        kwargs["skip_tags"] = skip_tags
    if forks:
        kwargs["forks"] = forks
    if cmdline:
        kwargs["cmdline"] = " ".join(cmdline)
    runner = ansible_runner.run(**kwargs)
    rc = int(runner.rc if runner.rc is not None else 1)
    status = str(runner.status)
    final = RunFinished(rc=rc, status=status)
    reduce(state, final)
    if on_event is not None:
        on_event(final, state)
    early = _early_output(workspace) if rc != 0 and state.tasks_seen == 0 else ""
    return RunResult(
        rc=rc,
        status=status,
        state=state,
        artifacts=workspace,
        early_output=early,
        known_hosts=known_hosts,
    )
