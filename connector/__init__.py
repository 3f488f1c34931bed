"""The Keepstone app inside Jira: verifies Jira's calls, serves the panel, hands off to the backend.

It keeps no Jira data.
"""
