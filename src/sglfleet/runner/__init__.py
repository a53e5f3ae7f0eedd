"""The only place that imports ansible_runner: one throwaway workspace per run."""

from sglfleet.runner.ansible import (
    EventHandler,
    RunResult,
    ansible_bin_dir,
    forks_for,
    run_playbook,
)

__all__ = ["EventHandler", "RunResult", "ansible_bin_dir", "forks_for", "run_playbook"]
