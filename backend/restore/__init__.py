"""Granular restore: plan, execute with a journal, report fidelity."""
