"""The packaging question, from real wheel metadata recorded from PyPI (tests/fixtures/wheels/).

For every serving group of every inventory sglfleet ships (inventories/examples/*, templates/*,
the lab's, Molecule's), on every supported OS (its Python from sglfleet.wheels.OS_PYTHONS, its
glibc) and CPU: would pip find a distribution of the pinned SGLang, and are the transfer engines the
group needs installed, hash-pinned, with wheels for that Python? The same question asked of the
behaviour before this change (the venv from /usr/bin/python3, no transfer engine) must fail.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement

from sglfleet.inventory import load_inventory
from sglfleet.lab.podman import LabNode, lab_inventory_vars
from sglfleet.launch import launch_table
from sglfleet.wheels import (
    ARCHITECTURES,
    OS_PYTHONS,
    RELEASES,
    TRANSFER_ENGINES,
    OsPython,
    TransferEngine,
    matching_wheel,
    python_problems,
    requirements_text,
    split_probe,
    transfer_engine,
    venv_python,
    wheel_tags,
)

ROOT = Path(__file__).resolve().parents[3]
WHEELS = ROOT / "tests" / "fixtures" / "wheels"
# What /usr/bin/python3 is on each supported OS: what the roles built venvs with before.
SYSTEM_PYTHON3 = {"Ubuntu 22.04": "3.10", "Ubuntu 24.04": "3.12", "Debian 12": "3.11"}


def fixture(name: str, version: str) -> dict[str, Any]:
    path = WHEELS / f"{name}-{version}.json"
    assert path.exists(), (
        f"no recorded metadata for {name}=={version}: run "
        f"`python tools/record_wheels.py {name}=={version}` and commit {path.relative_to(ROOT)}"
    )
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lab_inventory(tmp: Path) -> Path:
    nodes = [LabNode(f"lab-{i}", f"sglfleet-lab-{i}", f"10.88.0.{10 + i}") for i in range(3)]
    hosts, cluster = lab_inventory_vars(nodes, 1)
    directory = tmp / "lab"
    (directory / "group_vars" / "all").mkdir(parents=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
    (directory / "group_vars" / "all" / "lab.yml").write_text(yaml.safe_dump(cluster))
    return directory


def inventories(tmp: Path) -> list[Path]:
    found = [p for p in sorted((ROOT / "inventories" / "examples").iterdir()) if p.is_dir()]
    found += [p for p in sorted((ROOT / "templates").iterdir()) if (p / "hosts.yml").exists()]
    found += [ROOT / "molecule" / "fabric" / "sglfleet-inventory", _lab_inventory(tmp)]
    return found


def serving_groups(tmp: Path) -> list[dict[str, Any]]:
    """One record per serving group: where, the pinned SGLang, and the backend the role reads."""
    groups: dict[str, dict[str, Any]] = {}
    for directory in inventories(tmp):
        inventory = load_inventory(directory)
        # The backend exactly as the role derives it: from the launch record's config.
        for record in launch_table(inventory).values():
            key = f"{directory.name}:{record['group']}"
            backend = (
                record["config"].get("disaggregation-transfer-backend")
                if record["mode"] != "regular"
                else None
            )
            groups[key] = {"id": key, "sglang": inventory.sglang_version, "backend": backend}
    assert groups, "no serving group found"
    return list(groups.values())


def packaging_answers(
    group: dict[str, Any],
    os_label: str,
    python: str,
    glibc: str,
    architecture: str,
    engines: dict[str, TransferEngine],
) -> list[str]:
    """Why pip would fail this group on this host; empty when it finds everything."""
    problems: list[str] = []
    sglang = fixture("sglang", group["sglang"])
    if not matching_wheel(
        [f["filename"] for f in sglang["files"] if not f["yanked"]],
        sglang["requires_python"],
        python,
        glibc,
        architecture,
    ):
        problems.append(f"no sglang=={group['sglang']} wheel for Python {python}")
    backend = group["backend"]
    if backend is None:
        return problems
    engine = engines.get(backend)
    if engine is None or (backend != "fake" and not engine.pins):
        return [*problems, f"no transfer engine installed for backend {backend}"]
    sglang_needs = {_norm(Requirement(r).name) for r in sglang["requires_dist"] if "extra" not in r}
    pinned = {_norm(pin.name) for pin in engine.pins}
    left_out = {_norm(name) for name in engine.left_out}
    env = {"python_version": python, "platform_machine": architecture, "sys_platform": "linux"}
    for pin in engine.pins:
        recorded = fixture(pin.name, pin.version)
        on_pypi = {f["filename"]: f["sha256"] for f in recorded["files"] if not f["yanked"]}
        hashed = [filename for filename, _ in pin.wheels]
        wheel = matching_wheel(hashed, recorded["requires_python"], python, glibc, architecture)
        if wheel is None:
            problems.append(f"{pin.name}=={pin.version}: no hash-pinned wheel for Python {python}")
            continue
        if on_pypi.get(wheel) != dict(pin.wheels)[wheel]:
            problems.append(f"{wheel}: pinned sha256 differs from PyPI's")
        for text in recorded["requires_dist"]:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is not None and not Marker(str(marker)).evaluate({**env, "extra": ""}):
                continue
            name = _norm(requirement.name)
            if name in pinned or name in sglang_needs or name in left_out:
                continue
            problems.append(f"{pin.name} needs {requirement.name}, which nothing installs")
    return problems


PLATFORMS = [(entry, arch) for entry in OS_PYTHONS for arch in ARCHITECTURES]


@pytest.fixture(scope="module")
def groups(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return serving_groups(tmp_path_factory.mktemp("inventories"))


@pytest.mark.parametrize(
    ("entry", "architecture"), PLATFORMS, ids=[f"{e.label}-{a}" for e, a in PLATFORMS]
)
def test_every_serving_group_gets_its_packages(
    groups: list[dict[str, Any]], entry: OsPython, architecture: str
) -> None:
    answers = {
        group["id"]: packaging_answers(
            group, entry.label, entry.python, entry.glibc, architecture, TRANSFER_ENGINES
        )
        for group in groups
    }
    assert {group: problems for group, problems in answers.items() if problems} == {}
    # The PD example is among them, so the transfer-engine half of the question was asked.
    assert {"mooncake"} <= {group["backend"] for group in groups}


def test_the_question_fails_what_the_roles_did_before(groups: list[dict[str, Any]]) -> None:
    """/usr/bin/python3 (3.10 on Ubuntu 22.04) and no transfer engine: pip fails, PD aborts."""
    failures: dict[str, list[str]] = {}
    no_engines = {backend: TransferEngine(backend) for backend in TRANSFER_ENGINES}
    for entry in OS_PYTHONS:
        for group in groups:
            problems = packaging_answers(
                group, entry.label, SYSTEM_PYTHON3[entry.label], entry.glibc, "x86_64", no_engines
            )
            if problems:
                failures[f"{entry.label}:{group['id']}"] = problems
    assert (
        "no sglang==0.5.23 wheel for Python 3.10"
        in failures["Ubuntu 22.04:deepseek-r1-1x8-h200:r1"]
    )
    assert failures["Ubuntu 24.04:deepseek-r1-pd-4x8-h200:decode"] == [
        "no transfer engine installed for backend mooncake"
    ]
    assert not any(key.startswith("Debian 12:lab") for key in failures)


def test_every_backend_installs_on_every_supported_platform() -> None:
    """nixl too, though no example uses it: each pin has a hashed wheel per OS Python and CPU."""
    for backend in TRANSFER_ENGINES:
        group = {"id": backend, "sglang": "0.5.23", "backend": backend}
        for entry, arch in PLATFORMS:
            answers = packaging_answers(
                group, entry.label, entry.python, entry.glibc, arch, TRANSFER_ENGINES
            )
            assert answers == [], (backend, entry.label, arch)


def test_pinned_hashes_are_pypis() -> None:
    for engine in TRANSFER_ENGINES.values():
        for pin in engine.pins:
            on_pypi = {f["filename"]: f["sha256"] for f in fixture(pin.name, pin.version)["files"]}
            for filename, sha in pin.wheels:
                assert on_pypi.get(filename) == sha, filename


def test_pinned_meta_requirements_exist_on_pypi() -> None:
    """nixl 1.5.2 (newest) requires nixl-cu13==1.5.2, which PyPI does not have: 1.5.1 is pinned."""

    def missing(name: str, version: str) -> list[str]:
        out = []
        for text in fixture(name, version)["requires_dist"]:
            requirement = Requirement(text)
            exact = [s.version for s in requirement.specifier if s.operator == "=="]
            if not exact or requirement.marker is not None:
                continue
            dep = _norm(requirement.name)
            path = next(WHEELS.glob(f"{dep}-*.json"), None)
            if path is not None:
                versions = json.loads(path.read_text(encoding="utf-8"))["versions"]
                if exact[0] not in versions:
                    out.append(f"{requirement.name}=={exact[0]}")
        return out

    assert missing("nixl", "1.5.2") == ["nixl-cu13==1.5.2"]
    for engine in TRANSFER_ENGINES.values():
        for pin in engine.pins:
            assert missing(pin.name, pin.version) == [], pin.name


def test_release_table_matches_pypi() -> None:
    for (name, version), release in RELEASES.items():
        recorded = fixture(name, version)
        assert sorted(release.wheels) == sorted(f["filename"] for f in recorded["files"])
        assert release.requires_python == recorded["requires_python"]


def test_every_os_python_suits_open_webui_and_sglang() -> None:
    webui = RELEASES[("open-webui", "0.12.4")]
    for entry in OS_PYTHONS:
        for arch in ARCHITECTURES:
            assert matching_wheel(webui.wheels, webui.requires_python, entry.python, "2.17", arch)
    # Open WebUI's ceiling is real: 3.13 would not do.
    assert not matching_wheel(webui.wheels, webui.requires_python, "3.13", "2.39", "x86_64")


@pytest.mark.parametrize(
    ("python", "glibc", "arch", "found"),
    [
        ("3.11", "2.35", "x86_64", True),
        ("3.12", "2.39", "aarch64", True),
        ("3.10", "2.35", "x86_64", False),  # Ubuntu 22.04's python3
        (
            "3.11",
            "2.31",
            "x86_64",
            False,
        ),  # manylinux_2_34 needs glibc 2.34 (Ubuntu 20.04 has 2.31)
        ("3.11", "2.36", "ppc64le", False),
    ],
)
def test_sglang_wheel_selection(python: str, glibc: str, arch: str, found: bool) -> None:
    release = RELEASES[("sglang", "0.5.23")]
    wheel = matching_wheel(release.wheels, release.requires_python, python, glibc, arch)
    assert (wheel is not None) == found


def test_wheel_tags_expand_compressed_sets() -> None:
    tags = wheel_tags(
        "msgpack-1.2.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl"
    )
    assert ("cp311", "cp311", "manylinux2014_x86_64") in tags
    assert len(tags) == 3


def test_requirements_file_pins_every_wheel_hash() -> None:
    text = requirements_text(TRANSFER_ENGINES["mooncake"])
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[0].startswith("mooncake-transfer-engine-cuda13==0.3.14 --hash=sha256:")
    assert text.count("--hash=sha256:") == sum(
        len(pin.wheels) for pin in TRANSFER_ENGINES["mooncake"].pins
    )
    assert transfer_engine(None) is None
    assert TRANSFER_ENGINES["fake"].pins == ()


# ---- the preflight's decision (playbooks/preflight.yml), on probe outputs ----

APT_UNIVERSE_OFF = """python3.11:
  Installed: (none)
  Candidate: (none)
  Version table:
python3.11-venv:
  Installed: (none)
  Candidate: (none)
  Version table:
python3:
  Installed: 3.10.6-1~22.04.1
  Candidate: 3.10.6-1~22.04.1
"""
APT_UNIVERSE_ON = APT_UNIVERSE_OFF.replace(
    "python3.11:\n  Installed: (none)\n  Candidate: (none)",
    "python3.11:\n  Installed: (none)\n  Candidate: 3.11.0~rc1-1~22.04",
).replace(
    "python3.11-venv:\n  Installed: (none)\n  Candidate: (none)",
    "python3.11-venv:\n  Installed: (none)\n  Candidate: 3.11.0~rc1-1~22.04",
)
SGLANG = [("sglang", "0.5.23")]


def probe(glibc: str, version: str, apt: str) -> str:
    return f"glibc {glibc}\n--- python\n{version}\n--- apt\n{apt}"


def test_preflight_accepts_a_fresh_ubuntu_2204_whose_apt_has_python311() -> None:
    glibc, version, apt = split_probe(probe("2.35", "", APT_UNIVERSE_ON))
    assert (glibc, version) == ("glibc 2.35", None)
    assert python_problems("n1", "Ubuntu", "22.04", "x86_64", glibc, version, apt, SGLANG) == []


def test_preflight_refuses_ubuntu_2204_without_universe() -> None:
    glibc, version, apt = split_probe(probe("2.35", "", APT_UNIVERSE_OFF))
    problems = python_problems("n1", "Ubuntu", "22.04", "x86_64", glibc, version, apt, SGLANG)
    assert len(problems) == 1
    assert problems[0].startswith("n1: apt cannot install python3.11, python3.11-venv")
    assert "universe" in problems[0] and "Fix:" in problems[0]


def test_preflight_leaves_empty_apt_lists_to_the_role() -> None:
    # No list read yet (python3 has no candidate either): the role's apt task updates the cache.
    empty = "python3.11:\n  Installed: (none)\n  Candidate: (none)\npython3:\n  Candidate: (none)\n"
    assert python_problems("n1", "Ubuntu", "22.04", "x86_64", "glibc 2.35", None, empty, []) == []


def test_preflight_refuses_old_glibc_and_wrong_interpreter() -> None:
    problems = python_problems("n2", "Debian", "12", "x86_64", "glibc 2.31", "3.10.12", "", SGLANG)
    assert problems[0].startswith("n2: /usr/bin/python3.11 is Python 3.10.12, not 3.11")
    assert "pip finds no sglang==0.5.23 for Python 3.11 on x86_64 with glibc 2.31" in problems[1]
    assert "manylinux_2_34" in problems[1]


def test_preflight_refuses_an_os_without_a_table_entry() -> None:
    problems = python_problems("n3", "Ubuntu", "20.04", "x86_64", "glibc 2.31", None, "", SGLANG)
    assert problems and "no Python for Ubuntu 20.04" in problems[0]


def test_preflight_reads_the_captured_h200_host() -> None:
    """The real GPU machine (tests/fixtures/metal/h200-ubuntu2404): table entry, glibc, packages."""
    metal = ROOT / "tests" / "fixtures" / "metal" / "h200-ubuntu2404"
    os_release = dict(
        line.split("=", 1)
        for line in (metal / "os-release").read_text().splitlines()
        if "=" in line
    )
    release = os_release["VERSION_ID"].strip('"')
    installed = {
        fields[1].split(":")[0]: fields[2]
        for fields in (line.split() for line in (metal / "dpkg-l").read_text().splitlines())
        if len(fields) > 2 and fields[0] == "ii"
    }
    python = re.search(r"^Python (\S+)$", (metal / "python").read_text(), re.M)
    assert python is not None
    architecture = (metal / "uname").read_text().split()[-2]
    glibc = "glibc " + installed["libc6"].split("-")[0]
    assert (
        python_problems("h200", "Ubuntu", release, architecture, glibc, python[1], "", SGLANG) == []
    )
    entry = next(e for e in OS_PYTHONS if e.label == f"Ubuntu {release}")
    assert entry.python == ".".join(python[1].split(".")[:2])
    assert glibc == f"glibc {entry.glibc}"
    # What the table and the mooncake engine install, the real host already has.
    for package in (*entry.apt_packages, *TRANSFER_ENGINES["mooncake"].apt_packages):
        assert package in installed, package


def test_venv_python_reads_pyvenv_cfg() -> None:
    assert (
        venv_python("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.10.12\n")
        == "3.10"
    )
    assert venv_python("") is None


def test_filters_as_ansible_calls_them() -> None:
    spec = importlib.util.spec_from_file_location(
        "sglfleet_python_filter", ROOT / "plugins" / "filter" / "sglfleet_python.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    filters = module.FilterModule().filters()
    facts = {"distribution": "Ubuntu", "distribution_version": "22.04", "architecture": "x86_64"}
    python = filters["sglfleet_serving_python"](facts)
    assert python["interpreter"] == "/usr/bin/python3.11"
    assert python["apt_packages"] == ["python3.11", "python3.11-venv"]
    debian = {"distribution": "Debian", "distribution_major_version": "12"}
    assert filters["sglfleet_serving_python"](debian)["python"] == "3.11"
    assert (
        filters["sglfleet_python_problems"](
            probe("2.35", "3.11.0rc1", ""), facts, "n1", [["sglang", "0.5.23"]]
        )
        == []
    )
    engine = filters["sglfleet_transfer_engine"]("mooncake")
    assert engine["pins"] == ["mooncake-transfer-engine-cuda13==0.3.14", "msgpack==1.2.4"]
    assert filters["sglfleet_transfer_engine"]("")["pins"] == []
    slurped = {"content": base64.b64encode(b"version = 3.10.12\n").decode()}
    assert filters["sglfleet_venv_python"](slurped) == "3.10"
    assert filters["sglfleet_venv_python"]({"failed": True}) == ""


def _tasks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for task in items:
        out += _tasks(task["block"]) if "block" in task else [task]
    return out


def test_roles_build_venvs_with_the_table_interpreter() -> None:
    """No pip task builds a serving venv from /usr/bin/python3 any more."""
    for role, var in (
        ("sglang_server", "_sglang_server_serving_python"),
        ("open_webui", "_open_webui_python"),
    ):
        tasks_dir = ROOT / "roles" / role / "tasks"
        commands = [
            task["ansible.builtin.pip"]["virtualenv_command"]
            for path in sorted(tasks_dir.glob("*.yml"))
            for task in _tasks(yaml.safe_load(path.read_text()) or [])
            if "ansible.builtin.pip" in task
        ]
        assert commands and all(f"{var}.interpreter" in c for c in commands), (role, commands)


# ---- the inventory side of PD transfer (sglfleet.validate) ----


def _pd_example(tmp: Path, **disaggregation: str) -> Path:
    import shutil

    source = ROOT / "inventories" / "examples" / "deepseek-r1-pd-4x8-h200"
    target = tmp / "pd"
    shutil.copytree(source, target)
    path = target / "group_vars" / "all" / "serving.yml"
    document = yaml.safe_load(path.read_text())
    for group in document["sglfleet_serving_groups"]:
        group["disaggregation"].update(disaggregation)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def test_pd_example_uses_every_rail() -> None:
    inventory = load_inventory(ROOT / "inventories" / "examples" / "deepseek-r1-pd-4x8-h200")
    for group in inventory.serving_groups:
        assert group.disaggregation is not None
        devices = (group.disaggregation.ib_device or "").split(",")
        for host in group.hosts:
            assert devices == list(inventory.hosts[host].rdma_hcas), (group.name, host)


def test_validate_names_hcas_a_host_lacks(tmp_path: Path) -> None:
    from sglfleet import checks

    inventory = load_inventory(_pd_example(tmp_path, ib_device="mlx5_0,mlx5_9"))
    problems = [
        p for p in checks.problems(inventory) if p.variable and p.variable.endswith(".ib_device")
    ]
    assert {p.host for p in problems} == {"h200-p1", "h200-p2", "h200-d1", "h200-d2"}
    assert "mlx5_9" in problems[0].message and "comma-separated" in problems[0].hint


def test_validate_refuses_the_ascend_backend(tmp_path: Path) -> None:
    from sglfleet import checks

    inventory = load_inventory(_pd_example(tmp_path, transfer_backend="ascend"))
    problems = [
        p for p in checks.problems(inventory) if p.variable and "transfer_backend" in p.variable
    ]
    assert problems and "Ascend" in problems[0].message


def test_preflight_refuses_a_missing_venv_module_apt_cannot_install() -> None:
    """python3.11 present (e.g. built by hand) but python3.11-venv not installable."""
    apt = APT_UNIVERSE_OFF.replace(
        "python3.11:\n  Installed: (none)", "python3.11:\n  Installed: 3.11.0~rc1-1~22.04"
    )
    problems = python_problems("n1", "Ubuntu", "22.04", "x86_64", "glibc 2.35", "3.11.0", apt, [])
    assert len(problems) == 1 and "apt cannot install python3.11-venv " in problems[0]
