"""sglfleet-stage: verify model weights and stage them to local disk (node side, stdlib only).

Copied onto every node by the `model_weights` role and run with the system python3 as
`/usr/local/bin/sglfleet-stage` (a wrapper for `python3 -m sglfleet_stage`).
"""

__version__ = "1.0.0"
