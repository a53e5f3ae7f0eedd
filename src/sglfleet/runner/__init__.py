"""The only place that imports ansible_runner: one throwaway workspace per run."""

from sglfleet.runner.ansible import RunResult, forks_for, run_playbook

__all__ = ["RunResult", "forks_for", "run_playbook"]
