"""The Jira client's error tree (one place; lower-level errors are converted where they enter).

JiraError                    anything that went wrong talking to Jira; .status, .messages
├── JiraAuthError            401/403: wrong email or token, or no permission (permanent)
├── JiraNotFound             404: the project/issue does not exist or is not visible (permanent)
├── JiraBadRequest           400 and other 4xx: Jira refused the request; .errors per field (permanent)
└── JiraUnavailable          5xx, 429 or network errors still failing after every retry (transient)
"""

from __future__ import annotations


class JiraError(Exception):
    """Jira answered {status}: {messages}."""

    retryable = False

    def __init__(
        self,
        message: str,
        status: int | None = None,
        messages: list[str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.messages = messages or []
        self.errors = errors or {}


class JiraAuthError(JiraError):
    """Jira refused the credentials or the permission (401/403)."""


class JiraNotFound(JiraError):
    """The object does not exist or the account may not see it (404)."""


class JiraBadRequest(JiraError):
    """Jira refused the request as invalid (4xx other than 401/403/404/429)."""


class JiraUnavailable(JiraError):
    """Jira kept failing (5xx, 429, network) after every retry."""

    retryable = True
