"""A stand-in for `python -m sglang.launch_server` on lab nodes without GPUs.

It takes the same arguments as the SGLang release sglfleet pins (the flag catalog of the SGLang
contract, `sglfleet_sglang`, dumped from SGLang's own parser),
serves SGLang's HTTP surface with deterministic rehearsal text, and forms multi-node groups over
TCP so that systemd units, health checks, the router and alerts can be exercised end to end.
Standard library and PyYAML only: it runs in the node venv, not the controller's.
"""

REHEARSAL_LABEL = "[sglfleet rehearsal output: no model ran]"
