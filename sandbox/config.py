"""The sandbox's knobs: size of the generated site, realism (latency, limits, faults) and accounts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SandboxConfig:
    """Everything that shapes one simulated Jira site; every field has a safe default."""

    projects: int = 3
    issues_per_project: int = 40
    seed: int = 1
    flavor: str = "cloud"  # "cloud" or "datacenter"
    admin_email: str = "admin@example.com"
    admin_token: str = "sandbox-admin-token"
    viewer_email: str = "viewer@example.com"
    viewer_token: str = "sandbox-viewer-token"
    users: int = 12
    # Realism knobs.
    latency_ms: float = 0.0
    rate_limit: float = 0.0  # requests per second per credential; 0 = unlimited
    burst: int = 0  # bucket size; 0 = max(1, rate_limit)
    quota_points_per_hour: int = 0  # hourly points quota per credential; 0 = none
    fault_rate: float = 0.0  # share of API calls answered with a transient 5xx
    # Attachments: share of issues that have some, size range, and the corrupted share.
    attachment_share: float = 0.3
    attachment_max_bytes: int = 2 * 1024 * 1024
    attachment_large_bytes: int = 24 * 1024 * 1024
    attachment_large_share: float = 0.0
    corrupt_share: float = 0.05
    # Load the site from a JSON file instead of generating it (docs/sandbox.md).
    site_file: str | None = None
    boards: bool = True
    base_url: str | None = None  # the URL the site announces; default: the URL the request came to

    def __post_init__(self) -> None:
        if self.flavor not in ("cloud", "datacenter"):
            raise ValueError(f"flavor must be 'cloud' or 'datacenter', not {self.flavor!r}")
        for name in (
            "projects",
            "issues_per_project",
            "users",
            "burst",
            "quota_points_per_hour",
            "attachment_max_bytes",
            "attachment_large_bytes",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("attachment_share", "attachment_large_share", "corrupt_share", "fault_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    def bucket_size(self) -> int:
        """Return the token bucket size for the rate limit."""
        return self.burst or max(1, int(self.rate_limit))
