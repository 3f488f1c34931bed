"""The Jira Cloud platform REST API v3 endpoints of the sandbox, one module per family of resources."""
