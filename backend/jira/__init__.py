"""The one Jira HTTP client: retries, Retry-After, shared rate budget, cursor paging.

Nothing here knows about storage or the database; backups and restores both talk to Jira through it.
"""

from backend.jira.budget import LocalRateBudget, RateBudget
from backend.jira.client import ClientStats, JiraClient, JiraCredentials
from backend.jira.errors import JiraAuthError, JiraBadRequest, JiraError, JiraNotFound, JiraUnavailable

__all__ = [
    "ClientStats",
    "JiraAuthError",
    "JiraBadRequest",
    "JiraClient",
    "JiraCredentials",
    "JiraError",
    "JiraNotFound",
    "JiraUnavailable",
    "LocalRateBudget",
    "RateBudget",
]
