"""apt gating: a spec is skipped only when dpkg has exactly that package (and version)."""

from __future__ import annotations

from sglfleet.packages import missing, parse_dpkg_query

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
