"""The driver pin against apt's own resolver, on the stand-in repositories of build-repo.sh.

NVIDIA's stand-in repository (Origin NVIDIA, Label "NVIDIA CUDA") and the distribution's
(Origin Ubuntu/Debian: the same package names at newer revisions, Ubuntu's -server variants) are
built by the lab's src/sglfleet/lab/standin/build-repo.sh; the role's own preference templates are
rendered and `apt-get install -s` (a sandboxed apt: its own state, sources and preferences)
resolves the role's package list. Without the origin stanzas the distribution's packages win:
the negative control.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from sglfleet.kernel import driver_packages

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "nvidia_driver"
BUILD_REPO = ROOT / "src" / "sglfleet" / "lab" / "standin" / "build-repo.sh"
KERNEL = "6.8.0-60-generic"

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("apt-get", "apt-ftparchive", "dpkg-deb", "gpg")),
    reason="needs apt-get, apt-ftparchive (apt-utils), dpkg-deb and gpg",
)


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repos")
    for distro in ("ubuntu2404", "debian12"):
        subprocess.run(
            ["bash", str(BUILD_REPO), str(root), distro],
            check=True,
            capture_output=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KERNEL": KERNEL},
        )
    # What the distribution provides besides: dkms, which the DKMS packages depend on.
    base = root / "base"
    base.mkdir()
    (base / "Packages").write_text(
        "Package: dkms\nVersion: 3.0.10-8\nArchitecture: all\nFilename: ./dkms.deb\nSize: 1\n"
        "Description: stand-in\n\n"
    )
    return root


def role_vars() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    return data


def render_pin(source: str, version_pattern: str, refuse: bool = True) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["comment"] = lambda text: "# " + str(text)
    template = env.from_string(
        (
            ROLE / "templates" / "etc" / "apt" / "preferences.d" / "sglfleet-nvidia-driver.pref.j2"
        ).read_text()
    )
    data = role_vars()
    refused = data["_nvidia_driver_pin_refused_releases"] if refuse else {source: []}
    return template.render(
        ansible_managed="test",
        nvidia_driver_source=source,
        _nvidia_driver_pin=version_pattern,
        _nvidia_driver_pin_patterns=data["_nvidia_driver_pin_patterns"],
        _nvidia_driver_pin_refused_releases=refused,
    )


def resolve(
    tmp_path: Path, repos: Path, distro: str, pin: str, packages: list[str], fails: bool = False
) -> dict[str, str]:
    """`apt-get install -s PACKAGES` in a sandbox: {package: version} of what apt would install.

    With `fails`, apt must refuse; the result is then {"error": what apt said}.
    """
    etc = tmp_path / "etc"
    (etc / "preferences.d").mkdir(parents=True)
    (etc / "sources.list.d").mkdir()
    (etc / "apt.conf.d").mkdir()
    for sub in ("state/lists/partial", "cache/archives/partial", "log"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "status").write_text("")
    keyring = repos / "distribution" / f"{distro}.gpg"
    (etc / "sources.list").write_text(
        f"deb [signed-by={keyring}] file:{repos}/{distro}/x86_64/ /\n"
        f"deb [signed-by={keyring}] file:{repos}/distribution/{distro}/ /\n"
        f"deb [trusted=yes] file:{repos}/base/ ./\n"
    )
    general = (
        ROLE / "templates" / "etc" / "apt" / "preferences.d" / "cuda-repository-pin-600.j2"
    ).read_text()
    (etc / "preferences.d" / "cuda-repository-pin-600").write_text(general.split("\n", 1)[1])
    (etc / "preferences.d" / "sglfleet-nvidia-driver.pref").write_text(pin)
    options = [
        f"-oDir::Etc={etc}",
        f"-oDir::State={tmp_path / 'state'}",
        f"-oDir::State::status={tmp_path / 'status'}",
        f"-oDir::Cache={tmp_path / 'cache'}",
        f"-oDir::Log={tmp_path / 'log'}",
        "-oDebug::NoLocking=1",
        "-oAPT::Architecture=amd64",
        "-oAPT::Architectures::=amd64",
        "-oAPT::Install-Recommends=false",
    ]
    subprocess.run(["apt-get", *options, "update", "-q"], check=True, capture_output=True)
    out = subprocess.run(
        ["apt-get", *options, "install", "-s", "-q", *packages], capture_output=True, text=True
    )
    if fails:
        assert out.returncode != 0, out.stdout
        return {"error": out.stdout + out.stderr}
    assert out.returncode == 0, out.stdout + out.stderr
    return dict(re.findall(r"^Inst (\S+) \((\S+) ", out.stdout, re.MULTILINE))


def packages_for(source: str, distribution: str, branch: str) -> list[str]:
    templates = role_vars()["_nvidia_driver_packages"][source][distribution]["open"]
    return driver_packages(templates, branch, source, distribution)


def test_ubuntu_580_comes_from_nvidia_not_from_ubuntus_newer_revision(
    tmp_path: Path, repos: Path
) -> None:
    wanted = packages_for("nvidia_repo", "Ubuntu", "580")
    chosen = resolve(
        tmp_path, repos, "ubuntu2404", render_pin("nvidia_repo", "580.65.06-*"), wanted
    )
    assert set(wanted) <= set(chosen)
    nvidia = {
        name: version
        for name, version in chosen.items()
        if name.startswith(("nvidia", "libnvidia"))
    }
    assert set(nvidia.values()) == {"580.65.06-0ubuntu1"}, chosen


def test_without_the_origin_stanzas_ubuntus_packages_would_win(tmp_path: Path, repos: Path) -> None:
    # The version pin alone: Ubuntu's newer revision of the same version is taken, and NVIDIA's
    # packages that depend on their own revision cannot be installed next to it.
    wanted = packages_for("nvidia_repo", "Ubuntu", "580")
    pin = render_pin("nvidia_repo", "580.65.06-*", refuse=False)
    result = resolve(tmp_path, repos, "ubuntu2404", pin, wanted, fails=True)
    assert "but 580.65.06-0ubuntu2 is to be installed" in result["error"]


def test_ubuntu_590_unsuffixed_names_resolve_at_the_branch(tmp_path: Path, repos: Path) -> None:
    wanted = packages_for("nvidia_repo", "Ubuntu", "590")
    assert "nvidia-headless-open" in wanted
    chosen = resolve(tmp_path, repos, "ubuntu2404", render_pin("nvidia_repo", "590.*"), wanted)
    assert {chosen[name] for name in wanted} == {"590.44.01-0ubuntu1"}


def test_newest_of_the_branch_is_580_not_590(tmp_path: Path, repos: Path) -> None:
    wanted = packages_for("nvidia_repo", "Ubuntu", "580")
    chosen = resolve(tmp_path, repos, "ubuntu2404", render_pin("nvidia_repo", "580.*"), wanted)
    assert {chosen[name] for name in wanted} == {"580.95.05-0ubuntu1"}


def test_distribution_source_refuses_nvidias_repository(tmp_path: Path, repos: Path) -> None:
    pin = render_pin("distribution", "580.95.05-*")
    chosen = resolve(tmp_path, repos, "ubuntu2404", pin, ["nvidia-utils-580-server"])
    assert chosen == {
        "libnvidia-compute-580-server": "580.95.05-0ubuntu0.24.04.1",
        "nvidia-utils-580-server": "580.95.05-0ubuntu0.24.04.1",
    }
    # NVIDIA's 580.95.05-0ubuntu1 is the higher revision, but its repository is refused.
    chosen = resolve(tmp_path / "same-name", repos, "ubuntu2404", pin, ["libnvidia-compute-580"])
    assert chosen == {"libnvidia-compute-580": "580.95.05-0ubuntu0.24.04.1"}


def test_debian12_driver_from_nvidia_at_the_pinned_version(tmp_path: Path, repos: Path) -> None:
    wanted = packages_for("nvidia_repo", "Debian", "580")
    specs = [f"{name}=580.65.06-1" for name in wanted]
    chosen = resolve(tmp_path, repos, "debian12", render_pin("nvidia_repo", "580.65.06-*"), specs)
    assert chosen["libcuda1"] == "580.65.06-1"
    assert chosen["nvidia-kernel-support"] == "580.65.06-1"
    # The headers stand-ins of the running kernel come with the repository.
    headers = resolve(
        tmp_path / "headers",
        repos,
        "debian12",
        render_pin("nvidia_repo", "580.65.06-*"),
        ["linux-headers-amd64"],
    )
    assert headers == {f"linux-headers-{KERNEL}": "6.8.0-1", "linux-headers-amd64": "6.8.0-1"}
