"""The only place that imports ansible_runner: one throwaway workspace per run."""

from sglfleet.runner.ansible import RunResult, run_playbook

__all__ = ["RunResult", "run_playbook"]
