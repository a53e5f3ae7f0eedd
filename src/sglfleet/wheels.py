"""The Python each supported OS gives the serving venvs, and whether pip finds a wheel for it.

`OS_PYTHONS` is the one table of which interpreter each supported OS provides and from which apt
packages; the sglang_server and open_webui roles and the preflight read it through
plugins/filter/sglfleet_python.py. `RELEASES` lists the wheels of the pinned releases and
`TRANSFER_ENGINES` pins (with sha256) what each PD transfer backend installs. Both are held to the
wheel metadata recorded from PyPI in tests/fixtures/wheels/ by
tests/unit/sglfleet/test_packaging.py. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet


@dataclass(frozen=True)
class OsPython:
    """The interpreter sglfleet builds serving venvs with on one OS release."""

    distribution: str
    release: str
    python: str
    apt_packages: tuple[str, ...]
    glibc: str
    note: str

    @property
    def interpreter(self) -> str:
        return f"/usr/bin/python{self.python}"

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.release}"


# Ubuntu 22.04's python3 is 3.10, below SGLang's and Open WebUI's floor (3.11): its archive carries
# python3.11 in universe. Open WebUI also stops below 3.13, which no entry reaches.
OS_PYTHONS: tuple[OsPython, ...] = (
    OsPython(
        "Ubuntu",
        "22.04",
        "3.11",
        ("python3.11", "python3.11-venv"),
        "2.35",
        "python3 there is 3.10; python3.11 comes from the archive's universe component",
    ),
    OsPython(
        "Ubuntu", "24.04", "3.12", ("python3.12", "python3.12-venv"), "2.39", "the system python3"
    ),
    OsPython(
        "Debian", "12", "3.11", ("python3.11", "python3.11-venv"), "2.36", "the system python3"
    ),
)
ARCHITECTURES = ("x86_64", "aarch64")


def os_python(distribution: str, release: str) -> OsPython | None:
    """The table's entry for an OS (Debian by major version, Ubuntu by `YY.MM`), or None."""
    for entry in OS_PYTHONS:
        if entry.distribution != distribution:
            continue
        wanted = release.split(".")[0] if distribution == "Debian" else release
        if wanted == entry.release:
            return entry
    return None


@dataclass(frozen=True)
class Release:
    """A pinned release's wheels on PyPI (filenames) and its Requires-Python."""

    name: str
    version: str
    requires_python: str
    wheels: tuple[str, ...]


RELEASES: dict[tuple[str, str], Release] = {
    ("sglang", "0.5.23"): Release(
        "sglang",
        "0.5.23",
        ">=3.11",
        (
            "sglang-0.5.23-cp311-cp311-manylinux_2_34_aarch64.whl",
            "sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl",
            "sglang-0.5.23-cp312-cp312-manylinux_2_34_aarch64.whl",
            "sglang-0.5.23-cp312-cp312-manylinux_2_34_x86_64.whl",
            "sglang-0.5.23-cp313-cp313-manylinux_2_34_aarch64.whl",
            "sglang-0.5.23-cp313-cp313-manylinux_2_34_x86_64.whl",
        ),
    ),
    ("open-webui", "0.12.4"): Release(
        "open-webui", "0.12.4", "<3.13.0a1,>=3.11", ("open_webui-0.12.4-py3-none-any.whl",)
    ),
}


@dataclass(frozen=True)
class Pin:
    """One distribution installed with `--require-hashes`: its wheels' filenames and sha256."""

    name: str
    version: str
    wheels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TransferEngine:
    """What SGLang's `--disaggregation-transfer-backend X` needs in the venv, besides SGLang."""

    backend: str
    pins: tuple[Pin, ...] = ()
    apt_packages: tuple[str, ...] = ()
    import_check: str = ""
    # Why the import cannot run without a GPU driver (empty: it runs anywhere).
    import_needs_gpu: str = ""
    # Requirements of the pins deliberately not installed, and why.
    left_out: Mapping[str, str] = field(default_factory=dict)


# Installed with `pip --require-hashes --no-deps`: every other requirement of these wheels is
# already a requirement of sglang 0.5.23 itself (aiohttp, requests, torch, numpy), which the
# packaging test checks. The CUDA-13 builds, because sglang 0.5.23 runs on torch 2.14.1 (CUDA 13).
TRANSFER_ENGINES: dict[str, TransferEngine] = {
    "mooncake": TransferEngine(
        backend="mooncake",
        pins=(
            Pin(
                "mooncake-transfer-engine-cuda13",
                "0.3.14",
                (
                    (
                        "mooncake_transfer_engine_cuda13-0.3.14-cp311-cp311-manylinux_2_28_aarch64.whl",
                        "f453fe42b314d8256214d06845286982e606fd7d9019c9c45b6bc8b463658df4",
                    ),
                    (
                        "mooncake_transfer_engine_cuda13-0.3.14-cp311-cp311-manylinux_2_28_x86_64.whl",
                        "1fc1d8597e5501d6967a3d2835878500460d7dd40999f6f987131126dcba5c8f",
                    ),
                    (
                        "mooncake_transfer_engine_cuda13-0.3.14-cp312-cp312-manylinux_2_28_aarch64.whl",
                        "15c54971584f1d16e939a6c4b05af0a8447a19f5a59ad70a58962786b0bdb0f3",
                    ),
                    (
                        "mooncake_transfer_engine_cuda13-0.3.14-cp312-cp312-manylinux_2_28_x86_64.whl",
                        "74fa5f0684b143167503e33f85cccb9ca687d3f9843d4b594dbd5342c7df3e17",
                    ),
                ),
            ),
            # A requirement of mooncake-transfer-engine that sglang 0.5.23 does not bring.
            Pin(
                "msgpack",
                "1.2.4",
                (
                    (
                        "msgpack-1.2.4-cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64"
                        ".manylinux_2_28_aarch64.whl",
                        "0c75cfda0d3ccb1f6abc20e0608ad6b226e11f317b5ac297721504d2509e2bd9",
                    ),
                    (
                        "msgpack-1.2.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64"
                        ".manylinux_2_28_x86_64.whl",
                        "a45ceb5f199d5e388f28b550ba881096a3740d4bda10e661d77f59d9a2e8187a",
                    ),
                    (
                        "msgpack-1.2.4-cp312-cp312-manylinux2014_aarch64.manylinux_2_17_aarch64"
                        ".manylinux_2_28_aarch64.whl",
                        "9ca1e78106675f2aed07dc37b842ce19be70010ab22c5c5c04688f0840d48539",
                    ),
                    (
                        "msgpack-1.2.4-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64"
                        ".manylinux_2_28_x86_64.whl",
                        "c4d5bbdbea8f5669b3a734d6c226772804fb120848f99cbe63a0ddee63b049c9",
                    ),
                ),
            ),
        ),
        # mooncake/engine.so links libibverbs.so.1 and libmlx5.so.1 (rdma-core's provider package),
        # libcudart.so.13 (torch's CUDA runtime wheel, loaded by `import torch` first, as SGLang
        # does) and libcuda.so.1 (the NVIDIA driver).
        apt_packages=("libibverbs1", "ibverbs-providers"),
        import_check="import torch; from mooncake.engine import TransferEngine",
        import_needs_gpu="mooncake/engine.so links libcuda.so.1, which the NVIDIA driver provides",
    ),
    "nixl": TransferEngine(
        backend="nixl",
        pins=(
            # The `nixl` module SGLang imports; it loads the nixl_cu13 backend for a CUDA-13 torch.
            Pin(
                "nixl",
                "1.5.1",
                (
                    (
                        "nixl-1.5.1-py3-none-any.whl",
                        "aa90914d7df16fb586e57be633972917c6c2489b004ad241913ecda02207eaab",
                    ),
                ),
            ),
            Pin(
                "nixl-cu13",
                "1.5.1",
                (
                    (
                        "nixl_cu13-1.5.1-cp311-cp311-manylinux_2_28_aarch64.whl",
                        "8c378f132e6744e8fc5583109bc694a7b1e996bd21eeca08de8b1dbfdd9ebae7",
                    ),
                    (
                        "nixl_cu13-1.5.1-cp311-cp311-manylinux_2_28_x86_64.whl",
                        "6279834382eeabab60bfc2fe62c2363cda3bf520278bbd4a007932cc76073de5",
                    ),
                    (
                        "nixl_cu13-1.5.1-cp312-cp312-manylinux_2_28_aarch64.whl",
                        "dbccd0eacc919e8beeba036eb80a4eaa67b060c4d2c12d346797739397205369",
                    ),
                    (
                        "nixl_cu13-1.5.1-cp312-cp312-manylinux_2_28_x86_64.whl",
                        "ce48b601bad4c4503a5d9d418e6f4b1289a3a68e407af99f0f7e377f8371f49b",
                    ),
                ),
            ),
        ),
        import_check="from nixl._api import nixl_agent",
        left_out={
            "nixl-cu12": "the CUDA 12 build; nixl picks nixl_cu13 from torch's CUDA version (13)",
        },
    ),
    # SGLang's built-in stand-in for tests: nothing to install.
    "fake": TransferEngine(backend="fake"),
}


def transfer_engine(backend: str | None) -> TransferEngine | None:
    """The engine for a backend name, None for no backend (a regular group) or an unknown one."""
    return TRANSFER_ENGINES.get(backend or "")


def requirements_text(engine: TransferEngine) -> str:
    """A pip requirements file pinning every wheel of the engine by version and sha256."""
    lines = ["# Written by sglfleet (sglfleet.wheels.TRANSFER_ENGINES); hash-checked by pip."]
    for pin in engine.pins:
        hashes = " ".join(f"--hash=sha256:{sha}" for _, sha in pin.wheels)
        lines.append(f"{pin.name}=={pin.version} {hashes}")
    return "\n".join(lines) + "\n"


# ---- Would pip find a distribution? (wheel tags, PEP 425 / PEP 600) ----

_MANYLINUX_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def wheel_tags(filename: str) -> list[tuple[str, str, str]]:
    """(python, abi, platform) tags of a wheel filename, compressed tag sets expanded."""
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) < 5:
        raise ValueError(f"not a wheel filename: {filename}")
    python, abi, platform = parts[-3], parts[-2], parts[-1]
    return [
        (p, a, pl) for p in python.split(".") for a in abi.split(".") for pl in platform.split(".")
    ]


def _python_tag_ok(python_tag: str, abi: str, python: str) -> bool:
    major, minor = _version_tuple(python)
    if python_tag in ("py3", f"py{major}{minor}"):
        return abi == "none"
    match = re.fullmatch(r"cp(\d)(\d+)", python_tag)
    if not match:
        return False
    tag_version = (int(match[1]), int(match[2]))
    if abi == "abi3":
        return tag_version <= (major, minor)
    return tag_version == (major, minor) and abi in (f"cp{major}{minor}", "none")


def _platform_ok(platform: str, glibc: str, architecture: str) -> bool:
    if platform == "any":
        return True
    legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", platform)
    if legacy:
        need, arch = _MANYLINUX_LEGACY[legacy[1]], legacy[2]
    else:
        match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
        if not match:
            return False
        need, arch = (int(match[1]), int(match[2])), match[3]
    return arch == architecture and _version_tuple(glibc) >= need


def requires_python_ok(requires_python: str | None, python: str) -> bool:
    if not requires_python:
        return True
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return False
    # A release's own version (3.11.0) stands for the interpreter series.
    return spec.contains(f"{python}.0", prereleases=True)


def matching_wheel(
    wheels: Iterable[str],
    requires_python: str | None,
    python: str,
    glibc: str,
    architecture: str,
) -> str | None:
    """The first wheel pip would accept for CPython `python` on that glibc and CPU, or None."""
    if not requires_python_ok(requires_python, python):
        return None
    for filename in wheels:
        for python_tag, abi, platform in wheel_tags(filename):
            if _python_tag_ok(python_tag, abi, python) and _platform_ok(
                platform, glibc, architecture
            ):
                return filename
    return None


def describe_wheels(wheels: Iterable[str]) -> str:
    """`cp311/cp312 manylinux_2_34 x86_64/aarch64`-style summary for messages."""
    pythons: list[str] = []
    platforms: list[str] = []
    for filename in wheels:
        for python_tag, _, platform in wheel_tags(filename):
            if python_tag not in pythons:
                pythons.append(python_tag)
            if platform not in platforms:
                platforms.append(platform)
    return f"{'/'.join(pythons)} for {', '.join(platforms)}"


# ---- The preflight's question for one host ----


def _apt_policy(apt_policy: str) -> dict[str, tuple[str | None, str | None]]:
    """`apt-cache policy A B` output -> {package: (installed version, candidate version)}."""
    out: dict[str, tuple[str | None, str | None]] = {}
    current = None
    for line in apt_policy.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
            out[current] = (None, None)
            continue
        key, _, value = line.strip().partition(":")
        if current and key in ("Installed", "Candidate"):
            version = None if value.strip() in ("(none)", "") else value.strip()
            installed, candidate = out[current]
            out[current] = (version, candidate) if key == "Installed" else (installed, version)
    return out


PROBE_PYTHON = "--- python"
PROBE_APT = "--- apt"


def split_probe(text: str) -> tuple[str, str | None, str]:
    """The preflight's one probe -> (glibc line, interpreter version or None, apt-cache policy).

    Its output: `getconf GNU_LIBC_VERSION`, a `--- python` line, what the interpreter printed
    (nothing when it is missing), a `--- apt` line, then `apt-cache policy` of the packages.
    """
    head, _, rest = text.partition(PROBE_PYTHON)
    python, _, apt = rest.partition(PROBE_APT)
    version = python.strip()
    return head.strip(), (version or None), apt.strip("\n")


def python_problems(
    host: str,
    distribution: str,
    release: str,
    architecture: str,
    glibc: str,
    interpreter_version: str | None,
    apt_policy: str,
    releases: Iterable[tuple[str, str]],
) -> list[str]:
    """What stops this host's serving venvs, each with its fix; empty when pip will find wheels.

    `glibc`: `getconf GNU_LIBC_VERSION` output; `interpreter_version`: what the table's interpreter
    printed for `platform.python_version()` (None: not installed); `apt_policy`: `apt-cache policy`
    of the table's packages and of `python3` (which every apt source list carries, so a list that
    has python3 but not the table's packages lacks their archive component).
    """
    entry = os_python(distribution, release)
    if entry is None:
        supported = ", ".join(e.label for e in OS_PYTHONS)
        return [
            f"{host}: sglfleet has no Python for {distribution} {release} (supported: "
            f"{supported}). Fix: reinstall the node with a supported OS or remove it from the "
            "inventory."
        ]
    problems: list[str] = []
    glibc_version = ".".join(str(n) for n in _version_tuple(glibc)) or "unknown"
    python = entry.python
    if interpreter_version is not None:
        found = ".".join(str(n) for n in _version_tuple(interpreter_version))
        if found != python:
            problems.append(
                f"{host}: {entry.interpreter} is Python {interpreter_version.strip()}, not "
                f"{python} ({entry.label}'s serving Python). Fix: reinstall the "
                f"{entry.apt_packages[0]} package from the OS archive (something replaced it)."
            )
    policy = _apt_policy(apt_policy)
    # python3 has a candidate in every apt list: without one, the lists were never read and the
    # role's apt task (cache_valid_time) reads them first.
    lists_present = policy.get("python3", (None, None))[1] is not None
    missing = [p for p in entry.apt_packages if policy.get(p, (None, None)) == (None, None)]
    if lists_present and missing:
        component = " (in the universe component)" if entry.distribution == "Ubuntu" else ""
        problems.append(
            f"{host}: apt cannot install {', '.join(missing)}{component}, which "
            f"{entry.interpreter} and its venv module come from ({entry.note}). Fix: enable that "
            "archive component (Ubuntu: `add-apt-repository universe`), run `apt-get update`, "
            "and run again."
        )
    for name, version in releases:
        known = RELEASES.get((name, version))
        if known is None:
            continue
        if matching_wheel(known.wheels, known.requires_python, python, glibc, architecture):
            continue
        problems.append(
            f"{host}: pip finds no {name}=={version} for Python {python} on {architecture} with "
            f"glibc {glibc_version} ({entry.label}); its wheels are "
            f"{describe_wheels(known.wheels)}, Requires-Python {known.requires_python}. Fix: "
            f"pin a {name} release that has such a wheel, or move the node to a supported OS "
            f"({', '.join(e.label for e in OS_PYTHONS)})."
        )
    return problems


def venv_python(pyvenv_cfg: str) -> str | None:
    """`major.minor` a venv was built with, from its pyvenv.cfg (`version = 3.10.12`)."""
    for line in pyvenv_cfg.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            numbers = _version_tuple(value)
            if len(numbers) == 2:
                return f"{numbers[0]}.{numbers[1]}"
    return None
