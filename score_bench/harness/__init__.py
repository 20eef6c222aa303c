"""Contracts, registry, rollout, metrics and results: everything that knows no specific task or trainer."""
