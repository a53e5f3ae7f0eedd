"""The Prometheus metrics SGLang 0.5.23 exports with --enable-metrics: names, help, buckets.

Part of the SGLang contract: the rehearsal engine exports exactly these, and sglfleet's dashboard
and alert rules may read only these (tests/unit/ansible_content/test_monitoring.py). Names, help
texts and histogram buckets follow sglang/srt/observability/metrics_collector.py of that release;
tokenizer-side series carry {model_name, engine_type}, scheduler-side series add
{tp_rank, pp_rank, moe_ep_rank}. Counters are exposed with a `_total` suffix, histograms as
`_bucket`, `_sum` and `_count`.
"""

from __future__ import annotations

TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
E2E_BUCKETS = (*TTFT_BUCKETS, 600, 1200, 1800, 2400)
ITL_BUCKETS = (
    0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040,
    0.060, 0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000,
)  # fmt: skip

COUNTERS = {
    "sglang:prompt_tokens": "Number of prefill tokens processed.",
    "sglang:generation_tokens": "Number of generation tokens processed.",
    "sglang:num_requests": "Number of requests processed.",
    "sglang:num_aborted_requests": "Number of requests aborted.",
}
GAUGES = {
    "sglang:num_running_reqs": "The number of running requests.",
    "sglang:num_queue_reqs": "The number of requests in the waiting queue.",
    "sglang:num_used_tokens": "The number of used tokens.",
    "sglang:token_usage": "The token usage.",
    "sglang:gen_throughput": "The generation throughput (token/s).",
    "sglang:cache_hit_rate": "The prefix cache hit rate.",
    "sglang:max_total_num_tokens": "Maximum total number of tokens in the KV cache pool.",
}
HISTOGRAMS = {
    "sglang:time_to_first_token_seconds": (
        "Histogram of time to first token in seconds.",
        TTFT_BUCKETS,
    ),
    "sglang:inter_token_latency_seconds": (
        "Histogram of inter-token latency in seconds.",
        ITL_BUCKETS,
    ),
    "sglang:e2e_request_latency_seconds": (
        "Histogram of End-to-end request latency in seconds",
        E2E_BUCKETS,
    ),
}


def exposed_names() -> set[str]:
    """Every series name a scrape of SGLang shows (counter and histogram suffixes included)."""
    names = {f"{name}_total" for name in COUNTERS} | set(GAUGES)
    for name in HISTOGRAMS:
        names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names
