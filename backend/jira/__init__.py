"""The one Jira HTTP client: retries, Retry-After, shared rate budget, cursor paging."""
