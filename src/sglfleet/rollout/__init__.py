"""Health-gated rolling updates of serving groups, with automatic rollback (`sglfleet rollout`)."""

from sglfleet.rollout.core import RolloutOptions, run_rollout
from sglfleet.rollout.record import RolloutRecord, history

__all__ = ["RolloutOptions", "RolloutRecord", "history", "run_rollout"]
