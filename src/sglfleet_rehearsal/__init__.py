"""A stand-in for `python -m sglang.launch_server` on lab nodes without GPUs.

It takes the same arguments as SGLang 0.5.23 (from a catalog dumped from SGLang's own parser),
serves SGLang's HTTP surface with deterministic rehearsal text, and forms multi-node groups over
TCP so that systemd units, health checks, the router and alerts can be exercised end to end.
Standard library and PyYAML only: it runs in the node venv, not the controller's.
"""

SGLANG_VERSION = "0.5.23"
REHEARSAL_LABEL = "[sglfleet rehearsal output: no model ran]"
