"""Runner event dicts -> typed events -> run state. Imports nothing else from sglfleet."""

from sglfleet.events.model import (
    Event,
    HostCounts,
    HostResult,
    PlayStarted,
    RunFinished,
    RunState,
    StatsReported,
    TaskStarted,
    parse_event,
    reduce,
)

__all__ = [
    "Event",
    "HostCounts",
    "HostResult",
    "PlayStarted",
    "RunFinished",
    "RunState",
    "StatsReported",
    "TaskStarted",
    "parse_event",
    "reduce",
]
