"""The rehearsal engine's Prometheus metrics: SGLang's own names (sglfleet_sglang.metrics).

The exposition mirrors prometheus_client in multiprocess mode (no *_created samples).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from sglfleet_sglang.metrics import COUNTERS, GAUGES, HISTOGRAMS

THROUGHPUT_WINDOW_S = 10.0


def _go_float(value: float) -> str:
    """prometheus_client's float rendering: 1 -> 1.0, inf -> +Inf."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _labels(labels: dict[str, str], first: dict[str, str] | None = None) -> str:
    merged = {**(first or {}), **labels}
    parts = []
    for key, value in merged.items():
        escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'{key}="{escaped}"')
    return "{" + ",".join(parts) + "}"


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1


class Metrics:
    """Thread-safe counters, gauges and histograms for one engine process."""

    def __init__(
        self,
        *,
        model_name: str,
        engine_type: str,
        tp_rank: int = 0,
        max_total_num_tokens: int = 0,
    ) -> None:
        self._lock = threading.Lock()
        self.tokenizer_labels = {"model_name": model_name, "engine_type": engine_type}
        self.scheduler_labels = {
            **self.tokenizer_labels,
            "tp_rank": str(tp_rank),
            "pp_rank": "0",
            "moe_ep_rank": "0",
        }
        self.counters = dict.fromkeys(COUNTERS, 0.0)
        self.gauges = dict.fromkeys(GAUGES, 0.0)
        self.gauges["sglang:max_total_num_tokens"] = float(max_total_num_tokens)
        self.histograms = {name: _Histogram(b) for name, (_, b) in HISTOGRAMS.items()}
        self._recent_tokens: deque[tuple[float, int]] = deque()
        self.running = 0
        self.used_tokens = 0

    def request_started(self, prompt_tokens: int) -> None:
        with self._lock:
            self.running += 1
            self.used_tokens += prompt_tokens
            self.counters["sglang:prompt_tokens"] += prompt_tokens

    def tokens_generated(self, count: int) -> None:
        with self._lock:
            self.used_tokens += count
            self.counters["sglang:generation_tokens"] += count
            self._recent_tokens.append((time.monotonic(), count))

    def request_finished(
        self,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        ttft: float | None,
        e2e: float,
        aborted: bool = False,
    ) -> None:
        with self._lock:
            self.running -= 1
            self.used_tokens -= prompt_tokens + completion_tokens
            self.counters["sglang:num_requests"] += 1
            if aborted:
                self.counters["sglang:num_aborted_requests"] += 1
            if ttft is not None:
                self.histograms["sglang:time_to_first_token_seconds"].observe(ttft)
            self.histograms["sglang:e2e_request_latency_seconds"].observe(e2e)
            if completion_tokens > 1 and ttft is not None:
                itl = (e2e - ttft) / (completion_tokens - 1)
                self.histograms["sglang:inter_token_latency_seconds"].observe(itl)

    def _refresh_gauges(self) -> None:
        now = time.monotonic()
        while self._recent_tokens and self._recent_tokens[0][0] < now - THROUGHPUT_WINDOW_S:
            self._recent_tokens.popleft()
        recent = sum(count for _, count in self._recent_tokens)
        capacity = self.gauges["sglang:max_total_num_tokens"]
        self.gauges["sglang:num_running_reqs"] = float(self.running)
        self.gauges["sglang:num_used_tokens"] = float(self.used_tokens)
        self.gauges["sglang:token_usage"] = self.used_tokens / capacity if capacity else 0.0
        self.gauges["sglang:gen_throughput"] = recent / THROUGHPUT_WINDOW_S

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        with self._lock:
            self._refresh_gauges()
            for name, help_text in COUNTERS.items():
                lines += [f"# HELP {name}_total {help_text}", f"# TYPE {name}_total counter"]
                value = _go_float(self.counters[name])
                lines.append(f"{name}_total{_labels(self.tokenizer_labels)} {value}")
            for name, help_text in GAUGES.items():
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
                value = _go_float(self.gauges[name])
                lines.append(f"{name}{_labels(self.scheduler_labels)} {value}")
            for name, (help_text, _) in HISTOGRAMS.items():
                histogram = self.histograms[name]
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
                for bound, count in zip(histogram.buckets, histogram.counts, strict=True):
                    le = {"le": _go_float(float(bound))}
                    lines.append(
                        f"{name}_bucket{_labels(self.tokenizer_labels, le)} {_go_float(count)}"
                    )
                inf = {"le": "+Inf"}
                lines.append(
                    f"{name}_bucket{_labels(self.tokenizer_labels, inf)} "
                    f"{_go_float(histogram.count)}"
                )
                lines.append(
                    f"{name}_count{_labels(self.tokenizer_labels)} {_go_float(histogram.count)}"
                )
                lines.append(
                    f"{name}_sum{_labels(self.tokenizer_labels)} {_go_float(histogram.total)}"
                )
        return "\n".join(lines) + "\n"
