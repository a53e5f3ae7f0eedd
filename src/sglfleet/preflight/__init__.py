"""Preflight checks of real nodes: raw data collected by playbooks, judged by pure functions."""
