"""Pinned versions sglfleet defaults to (the roles' defaults mirror these)."""

sglfleet_sglang_version_default = "0.5.23"
sglfleet_router_version_default = "0.3.2"
