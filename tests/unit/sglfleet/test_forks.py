"""Forks sized to the fleet: every host of a converge gets its own worker, within reason."""

from __future__ import annotations

import pytest

from sglfleet.runner import forks_for


@pytest.mark.parametrize(
    ("hosts", "cores", "forks"),
    [
        (1, 2, 5),  # never below Ansible's own default
        (8, 2, 8),  # one per host
        (50, 2, 50),
        (1000, 2, 50),  # a small controller keeps ansible.cfg's 50
        (1000, 8, 128),  # 16 per core
        (1000, 64, 512),  # capped
    ],
)
def test_forks_for(hosts: int, cores: int, forks: int) -> None:
    assert forks_for(hosts, cores) == forks
