"""Keepstone: shared pieces of the command line and of serving (no Jira, backup or UI logic here)."""

__version__ = "0.1.0"
