"""apt gating: a spec is skipped only when dpkg has exactly that package (and version)."""

from __future__ import annotations

from pathlib import Path

from sglfleet.packages import missing, parse_dpkg_query, selection_pending

DPKG = (
    "nftables 1.0.6-2+deb12u2 installed\n"
    "libc6:amd64 2.36-9+deb12u10 installed\n"
    "nvidia-open 580.65.06-1 installed\n"
    "nfs-common 1:2.6.2-4 config-files\n"
    "garbage line\n"
)


def test_parse_keeps_only_installed_packages() -> None:
    installed = parse_dpkg_query(DPKG)
    assert set(installed) == {"nftables", "libc6", "nvidia-open"}
    assert installed["libc6"] == [{"version": "2.36-9+deb12u10"}]


def test_missing_names_and_pinned_versions() -> None:
    installed = parse_dpkg_query(DPKG)
    assert missing(["nftables", "libc6"], installed) == []
    assert missing(["nvidia-open=580.65.06-*"], installed) == []
    # Another pinned version, a removed package (config files only) and an absent one: install.
    assert missing(["nvidia-open=575.57.08-*", "nfs-common", "rdma-core"], installed) == [
        "nvidia-open=575.57.08-*",
        "nfs-common",
        "rdma-core",
    ]
    assert missing("nftables", installed) == []


def test_without_facts_every_spec_runs() -> None:
    assert missing(["nftables"], None) == ["nftables"]
    assert missing(["nftables"], {}) == ["nftables"]


# Captured on the H200 machine (tests/fixtures/metal/h200-ubuntu2404/COMMANDS.txt): dpkg-query with
# `${Package}\t${Version}\t${Status}`; ${Status} is "want flag status", the same fields the
# preflight reads as `${db:Status-Status} ${db:Status-Want}`. libcudnn9-cuda-13 is held there.
METAL = Path(__file__).resolve().parents[2] / "fixtures/metal/h200-ubuntu2404/dpkg-query-nvidia"


def _as_preflight_read(capture: str) -> str:
    lines = []
    for line in capture.splitlines():
        fields = line.split("\t")
        if len(fields) != 3:
            continue  # dpkg-query's "no packages found" lines
        want, _flag, status = fields[2].split()
        lines.append(f"{fields[0]} {fields[1]} {status} {want}")
    return "\n".join(lines) + "\n"


def test_the_preflight_read_keeps_each_package_selection() -> None:
    installed = parse_dpkg_query(_as_preflight_read(METAL.read_text()))
    assert installed["libcudnn9-cuda-13"] == [{"version": "9.14.0.64-1", "selection": "hold"}]
    assert installed["cuda-cudart-13-0"] == [{"version": "13.0.96-1", "selection": "install"}]
    assert "cuda-cub-13-0" not in installed  # not installed: no selection to keep


def test_a_selection_already_wanted_is_not_set_again() -> None:
    installed = parse_dpkg_query(_as_preflight_read(METAL.read_text()))
    held, unheld, absent = "libcudnn9-cuda-13", "cuda-cudart-13-0", "cuda-cub-13-0"
    assert selection_pending([held, unheld, absent], "hold", installed) == [unheld, absent]
    assert selection_pending([held, unheld, absent], "install", installed) == [held, absent]
    assert selection_pending(held, "hold", installed) == []


def test_without_the_read_every_selection_is_set() -> None:
    assert selection_pending(["nvidia-open"], "hold", None) == ["nvidia-open"]
    # The old three-field read (no selection): every package is set, as before.
    assert selection_pending(["nftables"], "install", parse_dpkg_query(DPKG)) == ["nftables"]
