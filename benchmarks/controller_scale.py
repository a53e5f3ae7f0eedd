"""Controller CPU per host of a no-change site.yml run at 10, 100 and 1,000 inventory hosts.

Method (docs/benchmarks.md, "Controller scale (issue 15)"):
- `record` (once, on the lab): a no-change rerun of site.yml on a converged 3-node lab with the
  callback benchmarks/plugins/callback/record_results.py, which stores every task's result per host
  under (play, role, task name as written, action). The secrets are redacted and the result kept as
  benchmarks/fixtures/controller_scale_recording.json, so the benchmark needs no lab.
- `run`: for each size, a lab-like inventory of N hosts from the lab's own inventory writer (a
  TP2 group on the first two hosts, single-node replicas on the rest, the router on the last),
  then `ansible-playbook site.yml` with the strategy benchmarks/plugins/strategy/replay.py. It is
  Ansible's linear strategy; all the controller's work stays real (vars plugins, templating of
  arguments, conditions and loops, one forked worker per host x task, callbacks, set_fact,
  assert, validate_argument_spec, template rendering); only actions that would reach a node
  return the result recorded for the same task on the lab host of the same kind (TP rank 0 ->
  lab-1, TP rank 1 -> lab-2, every replica -> lab-3, which is also the router). Controller CPU
  is user + system time of ansible-playbook and every process it reaped; per host = total / N;
  per host x task = total / the task results in the recap (ok + skipped + failed).
- Floor: the same run with every host's `sglfleet_plan` written as plain host_vars (from
  `sglfleet.host_plan.host_plans`) and the sglfleet vars plugin disabled: Ansible's own cost for
  these plays and role inputs.

Prints a table and, last, the headline: per-host CPU at the largest size / at the smallest (target
<= 1.2) and real / floor per host x task at the largest size (target <= 1.5).

    python benchmarks/controller_scale.py [--sizes 10,100,1000] [--no-floor] [--sample K]
    python benchmarks/controller_scale.py record -i ~/.sglfleet/lab/inventory

Forks are sized as the CLI sizes them (`forks_for`); SGLFLEET_BENCH_FORKS=N runs with N instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sglfleet.lab.podman import LabNode, lab_inventory_vars  # noqa: E402
from sglfleet.runner.ansible import forks_for  # noqa: E402

PLUGINS = Path(__file__).resolve().parent / "plugins"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "controller_scale_recording.json"
# Tasks moved to another play since the recording: new key -> recorded key (same module, host, run).
RENAMED = FIXTURE.with_name("controller_scale_renamed.json")
REDACTED = "REDACTED"
# Result keys whose values are secrets wherever they appear.
SECRET_KEY = re.compile(r"(api_key|password|secret|token|private_key)", re.IGNORECASE)
# Result fields the replay never needs: what the module was called with, and file diffs.
DROPPED_FIELDS = ("invocation", "diff")
RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)"
)


@dataclass(frozen=True)
class Measurement:
    hosts: int  # hosts the run targeted (the recap's)
    inventory: int  # hosts in the inventory (more than `hosts` in a sampled run)
    tasks: int  # host x task results: ok + skipped + failed
    cpu: float  # seconds, user + system of ansible-playbook and its reaped children
    wall: float
    changed: int
    failed: int
    misses: int  # node-side tasks with no recorded result

    @property
    def per_host(self) -> float:
        return self.cpu / self.hosts

    @property
    def per_host_task(self) -> float:
        return self.cpu / self.tasks if self.tasks else float("nan")


def lab_hosts(count: int) -> list[LabNode]:
    """`count` lab-like hosts with addresses that need not exist (nothing connects to them)."""
    return [
        LabNode(
            f"lab-{i + 1}",
            f"sglfleet-lab-{i + 1}",
            f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 2}",
        )
        for i in range(count)
    ]


def stands_in_for(hosts: list[str]) -> dict[str, str]:
    """The recorded lab host of each host's kind: TP rank 0, TP rank 1, replica (or router)."""
    kinds = {0: "lab-1", 1: "lab-2"}
    return {name: kinds.get(index, "lab-3") for index, name in enumerate(hosts)}


def sample_hosts(count: int, sample: int) -> list[str]:
    """`sample` hosts of a `count`-host inventory, every kind kept: TP pair, replicas, router.

    The router is the inventory's last host (lab_inventory_vars), so it is always in the sample.
    """
    names = [node.name for node in lab_hosts(count)]
    if sample >= count:
        return names
    return names[: sample - 1] + names[-1:]


def write_inventory(base: Path, count: int) -> Path:
    """A lab-like sglfleet inventory of `count` hosts, written as `sglfleet lab up` writes one."""
    inventory, cluster = lab_inventory_vars(lab_hosts(count), 1)
    inventory["all"]["vars"]["ansible_ssh_private_key_file"] = str(base / "unused-key")
    inv = base / f"hosts-{count}"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    (inv / "group_vars" / "all" / "lab.yml").write_text(yaml.safe_dump(cluster, sort_keys=False))
    (inv / "group_vars" / "all" / "secrets.yml").write_text(
        yaml.safe_dump({"sglfleet_api_key": "sk-benchmark-not-a-secret"})
    )
    return inv


def inline_plans(inv: Path) -> None:
    """Each host's `sglfleet_plan` as plain host_vars: the floor's inputs, without the plugin."""
    from sglfleet.host_plan import host_plans
    from sglfleet.inventory import load_inventory

    host_vars = inv / "host_vars"
    host_vars.mkdir()
    for host, plan in host_plans(load_inventory(inv)).items():
        (host_vars / f"{host}.yml").write_text(yaml.safe_dump({"sglfleet_plan": plan}))


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP lines of the default callback -> host -> counts."""
    recap: dict[str, dict[str, int]] = {}
    for line in output.splitlines():
        match = RECAP_LINE.match(line.strip())
        if match:
            counts = match.groupdict()
            host = counts.pop("host")
            recap[host] = {key: int(value) for key, value in counts.items()}
    return recap


def redact(value: Any, secrets: set[str]) -> Any:
    """The value with secret strings and secret-named fields replaced, recursively."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if SECRET_KEY.search(str(key)) and isinstance(item, str) and item
            else redact(item, secrets)
            for key, item in value.items()
            if key not in DROPPED_FIELDS
        }
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    if isinstance(value, str):
        for secret in secrets:
            if secret and secret in value:
                value = value.replace(secret, REDACTED)
        return value
    return value


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ansible_env(facts: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_FILTER_PLUGINS": str(ROOT / "plugins" / "filter"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(facts),
        "SGLFLEET_PROJECT": str(ROOT),
        # Only the recap is read; per-task lines for skipped and ok hosts are not printed.
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
        "ANSIBLE_DISPLAY_OK_HOSTS": "false",
        "ANSIBLE_NOCOLOR": "1",
    }


def replay(
    inv: Path, count: int, floor: bool, work: Path, sample: int | None = None
) -> Measurement:
    hosts = [node.name for node in lab_hosts(count)]
    targets = sample_hosts(count, sample) if sample else hosts
    misses = work / f"misses-{count}-{'floor' if floor else 'real'}.txt"
    facts = Path(tempfile.mkdtemp(prefix="facts-", dir=work))
    env = ansible_env(facts)
    env.update(
        {
            "ANSIBLE_STRATEGY_PLUGINS": str(PLUGINS / "strategy"),
            "ANSIBLE_STRATEGY": "replay",
            "SGLFLEET_REPLAY_RECORDING": str(FIXTURE),
            "SGLFLEET_REPLAY_RENAMED": str(RENAMED),
            "SGLFLEET_REPLAY_HOSTS": json.dumps(stands_in_for(hosts)),
            "SGLFLEET_REPLAY_MISSES": str(misses),
        }
    )
    if floor:
        env["ANSIBLE_VARS_ENABLED"] = "host_group_vars"
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        str(inv / "hosts.yml"),
        "--forks",
        str(int(os.environ.get("SGLFLEET_BENCH_FORKS", "0")) or forks_for(len(targets))),
        str(ROOT / "site.yml"),
    ]
    if len(targets) < count:
        command += ["--limit", ",".join(targets)]
    before = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - start
    cpu = children_cpu() - before
    (work / f"output-{count}-{'floor' if floor else 'real'}.txt").write_text(
        proc.stdout + proc.stderr
    )
    recap = parse_recap(proc.stdout)
    if len(recap) != len(targets):
        raise SystemExit(
            f"{len(targets)} hosts: recap has {len(recap)} hosts\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    missed = len(misses.read_text().splitlines()) if misses.exists() else 0
    return Measurement(
        hosts=len(targets),
        inventory=count,
        tasks=sum(c["ok"] + c["skipped"] + c["failed"] for c in recap.values()),
        cpu=cpu,
        wall=wall,
        changed=sum(c["changed"] for c in recap.values()),
        failed=sum(c["failed"] for c in recap.values()),
        misses=missed,
    )


def record(inventory: Path, output: Path) -> None:
    """A no-change rerun of site.yml on the lab, every result stored, secrets redacted."""
    with tempfile.TemporaryDirectory(prefix="controller-scale-record-") as tmp:
        raw = Path(tmp) / "raw.json"
        env = ansible_env(Path(tmp) / "facts")
        env.update(
            {
                "ANSIBLE_CALLBACK_PLUGINS": str(PLUGINS / "callback"),
                "ANSIBLE_CALLBACKS_ENABLED": "record_results",
                "SGLFLEET_RECORD_PATH": str(raw),
            }
        )
        command = [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(inventory / "hosts.yml"),
            str(ROOT / "site.yml"),
        ]
        start = time.perf_counter()
        proc = subprocess.run(
            command, capture_output=True, text=True, cwd=ROOT, env=env, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(f"recording run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        data = json.loads(raw.read_text())
        for per_host in data["hosts"].values():
            for entry in per_host.values():
                # A loop's overall result repeats its items, and the replay only reads items.
                if entry["items"]:
                    entry.pop("result", None)
        secrets_file = inventory / "group_vars" / "all" / "secrets.yml"
        secrets = {str(v) for v in (yaml.safe_load(secrets_file.read_text()) or {}).values()}
        data = redact(data, secrets)
        data["recorded"] = {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "how": "no-change rerun of site.yml on a converged 3-node `sglfleet lab`",
            "wall_s": round(time.perf_counter() - start, 1),
            "changed": sum(c["changed"] for c in data["recap"].values()),
        }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(data, indent=None, sort_keys=True) + "\n")
    print(f"recorded {len(data['keys'])} task keys on {len(data['hosts'])} hosts -> {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("step", nargs="?", default="run", choices=["run", "record"])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor runs")
    parser.add_argument("--floor-only", action="store_true", help="only the floor runs")
    parser.add_argument(
        "-i", "--inventory", type=Path, help="record: the converged lab's inventory"
    )
    parser.add_argument("--keep", type=Path, help="keep the inventories and outputs here")
    parser.add_argument(
        "--sample",
        type=int,
        help="run only this many hosts of each inventory (--limit; every kind kept): what the"
        " inventory's size costs each host, without the plays' per-host work at that size",
    )
    args = parser.parse_args()
    if args.step == "record":
        if not args.inventory:
            parser.error("record needs -i INVENTORY (the lab's, from `sglfleet lab status --json`)")
        record(args.inventory.expanduser().resolve(), FIXTURE)
        return
    floor = not args.no_floor and (ROOT / "src" / "sglfleet" / "host_plan.py").exists()
    sizes = [int(s) for s in args.sizes.split(",")]
    load = os.getloadavg()[0]
    rows: list[tuple[Measurement, Measurement | None]] = []
    with tempfile.TemporaryDirectory(prefix="controller-scale-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for count in sizes:
            inv = write_inventory(work, count)
            lower = None
            if floor:
                inline_plans(inv)
                lower = replay(inv, count, True, work, args.sample)
            # The floor's host_vars hold the plan; the real run reads it from the vars plugin.
            shutil.rmtree(inv / "host_vars", ignore_errors=True)
            real = (
                lower if args.floor_only and lower else replay(inv, count, False, work, args.sample)
            )
            rows.append((real, lower))
            print(f"# {count} hosts: {real.cpu:.1f} s CPU in {real.wall:.1f} s", file=sys.stderr)
    print(
        f"{'hosts':>6} {'run':>5} {'tasks run':>10} {'CPU (s)':>9} {'wall (s)':>9} {'per host':>9}"
        f" {'per host x task (ms)':>21} {'floor (ms)':>11} {'ratio':>6} {'changed':>8}"
        f" {'misses':>7}"
    )
    for real, lower in rows:
        floor_ms = f"{lower.per_host_task * 1000:.2f}" if lower else "-"
        ratio = f"{real.per_host_task / lower.per_host_task:.2f}" if lower else "-"
        print(
            f"{real.inventory:>6} {real.hosts:>5} {real.tasks:>10}"
            f" {real.cpu:>9.1f} {real.wall:>9.1f}"
            f" {real.per_host:>9.3f}"
            f" {real.per_host_task * 1000:>21.2f} {floor_ms:>11} {ratio:>6} {real.changed:>8}"
            f" {real.misses:>7}"
        )
    print(f"nproc {os.cpu_count()}, load average at start {load:.2f}")
    first, last = rows[0][0], rows[-1][0]
    growth = last.per_host / first.per_host
    sampled = f" (runs of {args.sample} hosts)" if args.sample else ""
    headline = (
        f"per-host controller CPU at {last.inventory} / at {first.inventory} hosts{sampled}:"
        f" {growth:.2f}"
    )
    if rows[-1][1] is not None:
        lower = rows[-1][1]
        versus_floor = last.per_host_task / lower.per_host_task
        headline += f"; real / floor per host x task at {last.inventory}: {versus_floor:.2f}"
    print(headline)


if __name__ == "__main__":
    main()
